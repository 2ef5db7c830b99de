using System;
using System.Collections.Generic;

namespace PatchCore
{
    /// <summary>Nearest-neighbour search of a model's memory bank.</summary>
    public enum NearestNeighbourMethod
    {
        /// <summary>Exact search (FAISS IndexFlatL2), as the reference's FaissNN.</summary>
        Exact = 0,
        /// <summary>Approximate search (IVF512,PQ64, nprobe 1), as the reference's ApproximateFaissNN.</summary>
        IvfPq = 1,
    }

    /// <summary>Names of the memory-bank samplers for <see cref="PatchCoreConfig.Sampler"/>.</summary>
    public static class Samplers
    {
        /// <summary>Keep every patch (coreset off).</summary>
        public const string Identity = "identity";
        /// <summary>A random subset of <see cref="PatchCoreConfig.Percentage"/> of the patches.</summary>
        public const string Random = "random";
        /// <summary>Exact greedy k-center coreset.</summary>
        public const string GreedyCoreset = "greedy_coreset";
        /// <summary>Approximate greedy k-center coreset (the reference's default).</summary>
        public const string ApproximateGreedyCoreset = "approx_greedy_coreset";
    }

    /// <summary>
    /// Settings of a <see cref="PatchCoreModel"/>. A property left null keeps the library's
    /// default, which is the reference implementation's (given on each property). The model
    /// copies the settings when it is created; the config can be changed or reused afterwards.
    /// Without a backbone (neither <see cref="BackbonePath"/> nor <see cref="BackboneBytes"/>)
    /// the model is features-only: it takes feature maps the host computed.
    /// </summary>
    public sealed class PatchCoreConfig
    {
        /// <summary>Shorter image side after resizing (256).</summary>
        public int? Resize { get; set; }

        /// <summary>Side of the centre crop, and of the anomaly maps (224).</summary>
        public int? ImageSize { get; set; }

        /// <summary>Per-layer MeanMapper output dimension (1024).</summary>
        public int? PretrainEmbedDimension { get; set; }

        /// <summary>Patch embedding dimension after the Aggregator (1024).</summary>
        public int? TargetEmbedDimension { get; set; }

        /// <summary>Odd patch neighbourhood size (3).</summary>
        public int? PatchSize { get; set; }

        /// <summary>k nearest neighbours averaged per patch score (1).</summary>
        public int? NumNearestNeighbours { get; set; }

        /// <summary>Memory bank search (Exact).</summary>
        public NearestNeighbourMethod? NearestNeighbourMethod { get; set; }

        /// <summary>Seed of the sampler (0).</summary>
        public long? Seed { get; set; }

        /// <summary>Worker threads, 0 = the library default set by <see cref="PatchCoreLibrary.SetNumThreads"/> (0).</summary>
        public int? NumThreads { get; set; }

        /// <summary>Images per backbone call (8).</summary>
        public int? BatchSize { get; set; }

        /// <summary>Store the ONNX backbone inside saved model files (false).</summary>
        public bool? EmbedBackbone { get; set; }

        /// <summary>Coreset fraction in (0, 1) (0.1).</summary>
        public double? Percentage { get; set; }

        /// <summary>Gaussian sigma of the anomaly maps in [0, 64]; 0 means 4, below 0.125 no smoothing (4).</summary>
        public double? Sigma { get; set; }

        /// <summary>Per-channel normalisation mean, 3 values (ImageNet: 0.485, 0.456, 0.406).</summary>
        public float[] Mean { get; set; }

        /// <summary>Per-channel normalisation std, 3 values (ImageNet: 0.229, 0.224, 0.225).</summary>
        public float[] Std { get; set; }

        /// <summary>Path of the ONNX backbone ("" or null: none, a features-only model).</summary>
        public string BackbonePath { get; set; }

        /// <summary>The ONNX backbone as bytes (instead of <see cref="BackbonePath"/>).</summary>
        public byte[] BackboneBytes { get; set; }

        /// <summary>Memory-bank sampler, one of <see cref="Samplers"/> (approx_greedy_coreset).</summary>
        public string Sampler { get; set; }

        /// <summary>"cpu", "cuda" or "cuda:N" ("cpu").</summary>
        public string Device { get; set; }

        /// <summary>Backbone layers to extract, in network order; the first defines the patch grid.</summary>
        public IList<string> Layers { get; set; }

        /// <summary>Builds a native configuration holding these settings.</summary>
        internal unsafe ConfigHandle CreateHandle()
        {
            const string fn = "PatchCoreConfig";
            Errors.CheckString(BackbonePath, fn, "BackbonePath", true);
            Errors.CheckString(Sampler, fn, "Sampler", true);
            Errors.CheckString(Device, fn, "Device", true);
            ConfigHandle h;
            Errors.Check(NativeMethods.patchcore_config_create(out h));
            try
            {
                SetInt(h, (int)PatchCoreParameter.Resize, Resize);
                SetInt(h, (int)PatchCoreParameter.ImageSize, ImageSize);
                SetInt(h, (int)PatchCoreParameter.PretrainEmbedDimension, PretrainEmbedDimension);
                SetInt(h, (int)PatchCoreParameter.TargetEmbedDimension, TargetEmbedDimension);
                SetInt(h, (int)PatchCoreParameter.PatchSize, PatchSize);
                SetInt(h, (int)PatchCoreParameter.NumNearestNeighbours, NumNearestNeighbours);
                SetInt(h, (int)PatchCoreParameter.NearestNeighbourMethod, (int?)NearestNeighbourMethod);
                SetInt(h, (int)PatchCoreParameter.Seed, Seed);
                SetInt(h, (int)PatchCoreParameter.NumThreads, NumThreads);
                SetInt(h, (int)PatchCoreParameter.BatchSize, BatchSize);
                SetInt(h, (int)PatchCoreParameter.EmbedBackbone, EmbedBackbone.HasValue ? (EmbedBackbone.Value ? 1 : 0) : (long?)null);
                SetFloat(h, (int)PatchCoreParameter.Percentage, Percentage);
                SetFloat(h, (int)PatchCoreParameter.Sigma, Sigma);
                SetFloats(h, (int)PatchCoreParameter.Mean, Mean);
                SetFloats(h, (int)PatchCoreParameter.Std, Std);
                SetString(h, (int)PatchCoreParameter.BackbonePath, BackbonePath);
                SetString(h, (int)PatchCoreParameter.Sampler, Sampler);
                SetString(h, (int)PatchCoreParameter.Device, Device);
                if (BackboneBytes != null)
                {
                    fixed (byte* p = BackboneBytes)
                    {
                        Errors.Check(NativeMethods.patchcore_config_set_backbone_bytes(h, p, (UIntPtr)BackboneBytes.Length));
                    }
                }
                if (Layers != null)
                {
                    using (var names = new Utf8StringArray(Layers, fn, "Layers"))
                    fixed (IntPtr* p = names.Pointers)
                    {
                        Errors.Check(NativeMethods.patchcore_config_set_layers(h, p, (UIntPtr)names.Count));
                    }
                }
                return h;
            }
            catch
            {
                h.Dispose();
                throw;
            }
        }

        private static void SetInt(ConfigHandle h, int key, long? value)
        {
            if (value.HasValue)
            {
                Errors.Check(NativeMethods.patchcore_config_set_int(h, key, value.Value));
            }
        }

        private static void SetFloat(ConfigHandle h, int key, double? value)
        {
            if (value.HasValue)
            {
                Errors.Check(NativeMethods.patchcore_config_set_float(h, key, value.Value));
            }
        }

        private static unsafe void SetFloats(ConfigHandle h, int key, float[] values)
        {
            if (values != null)
            {
                fixed (float* p = values)
                {
                    Errors.Check(NativeMethods.patchcore_config_set_floats(h, key, p, (UIntPtr)values.Length));
                }
            }
        }

        private static void SetString(ConfigHandle h, int key, string value)
        {
            if (value != null)
            {
                Errors.Check(NativeMethods.patchcore_config_set_string(h, key, value));
            }
        }
    }

    /// <summary>Setting and property keys (PATCHCORE_PARAM_* in patchcore.h) for <see cref="PatchCoreModel.GetInt"/> and <see cref="PatchCoreModel.GetFloat"/>.</summary>
    public enum PatchCoreParameter
    {
        /// <summary>int: shorter side after resize.</summary>
        Resize = 1,
        /// <summary>int: centre crop side = anomaly map side.</summary>
        ImageSize = 2,
        /// <summary>int: MeanMapper output dimension.</summary>
        PretrainEmbedDimension = 3,
        /// <summary>int: Aggregator output dimension.</summary>
        TargetEmbedDimension = 4,
        /// <summary>int: patch neighbourhood size.</summary>
        PatchSize = 5,
        /// <summary>int: k nearest neighbours.</summary>
        NumNearestNeighbours = 6,
        /// <summary>int: <see cref="PatchCore.NearestNeighbourMethod"/>.</summary>
        NearestNeighbourMethod = 7,
        /// <summary>int: sampler seed.</summary>
        Seed = 8,
        /// <summary>int: worker threads (0 = all cores).</summary>
        NumThreads = 9,
        /// <summary>int: images per backbone call.</summary>
        BatchSize = 10,
        /// <summary>int: 1 when saved files embed the backbone.</summary>
        EmbedBackbone = 11,
        /// <summary>float: coreset fraction.</summary>
        Percentage = 20,
        /// <summary>float: Gaussian sigma of the maps.</summary>
        Sigma = 21,
        /// <summary>float[3]: per-channel mean (config only).</summary>
        Mean = 30,
        /// <summary>float[3]: per-channel std (config only).</summary>
        Std = 31,
        /// <summary>string: ONNX backbone file (config only).</summary>
        BackbonePath = 40,
        /// <summary>string: sampler name (config only).</summary>
        Sampler = 41,
        /// <summary>string: device (config only).</summary>
        Device = 42,
        /// <summary>int, read-only: memory bank rows (0 before fit).</summary>
        BankRows = 100,
        /// <summary>int, read-only: patch grid rows per image.</summary>
        GridHeight = 101,
        /// <summary>int, read-only: patch grid columns per image.</summary>
        GridWidth = 102,
        /// <summary>float, read-only: calibrated image threshold (NaN if none).</summary>
        Threshold = 103,
    }
}
