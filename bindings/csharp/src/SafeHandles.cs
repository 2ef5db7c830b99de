// One SafeHandle per native object type. The runtime reference-counts a SafeHandle across
// every P/Invoke that takes it, so Dispose racing a call on another thread defers the
// _free until that call has returned. ReleaseHandle can run on the finalizer thread: it
// never throws.
using System;
using Microsoft.Win32.SafeHandles;

namespace PatchCore
{
    /// <summary>Owns a patchcore_config handle.</summary>
    internal sealed class ConfigHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        private ConfigHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            try
            {
                return NativeMethods.patchcore_config_free(handle) == 0;
            }
            catch (Exception)
            {
                return false;
            }
        }
    }

    /// <summary>Owns a patchcore_model handle.</summary>
    internal sealed class ModelHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        private ModelHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            try
            {
                return NativeMethods.patchcore_model_free(handle) == 0;
            }
            catch (Exception)
            {
                return false;
            }
        }
    }

    /// <summary>Owns a patchcore_aggregator handle.</summary>
    internal sealed class AggregatorHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        private AggregatorHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            try
            {
                return NativeMethods.patchcore_aggregator_free(handle) == 0;
            }
            catch (Exception)
            {
                return false;
            }
        }
    }

    /// <summary>Owns a patchcore_scorer handle.</summary>
    internal sealed class ScorerHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        private ScorerHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            try
            {
                return NativeMethods.patchcore_scorer_free(handle) == 0;
            }
            catch (Exception)
            {
                return false;
            }
        }
    }

    /// <summary>Owns a patchcore_segmentor handle.</summary>
    internal sealed class SegmentorHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        private SegmentorHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            try
            {
                return NativeMethods.patchcore_segmentor_free(handle) == 0;
            }
            catch (Exception)
            {
                return false;
            }
        }
    }
}
