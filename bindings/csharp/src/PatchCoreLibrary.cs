using System;

namespace PatchCore
{
    /// <summary>
    /// Process-wide functions of libpatchcore: version, ONNX Runtime location, thread count.
    /// Every object of the binding checks the library version at its first use: a library
    /// whose major version differs from <see cref="BindingMajorVersion"/>, or whose minor
    /// version is older than <see cref="BindingMinorVersion"/>, is refused with
    /// <see cref="PatchCoreStatus.Unsupported"/>.
    /// </summary>
    public static class PatchCoreLibrary
    {
        /// <summary>The major ABI version this binding was written for.</summary>
        public const int BindingMajorVersion = 0;

        /// <summary>The oldest minor ABI version providing every function this binding imports.</summary>
        public const int BindingMinorVersion = 1;

        private static volatile bool compatible;

        /// <summary>The loaded library's version (major.minor.patch).</summary>
        public static Version Version
        {
            get
            {
                int n = VersionNumber;
                return new Version(n / 10000, n / 100 % 100, n % 100);
            }
        }

        /// <summary>The loaded library's version as major*10000 + minor*100 + patch.</summary>
        public static int VersionNumber
        {
            get
            {
                try
                {
                    return NativeMethods.patchcore_version_number();
                }
                catch (DllNotFoundException e)
                {
                    string loader = NativeMethods.LoaderError();
                    throw new DllNotFoundException(
                        "libpatchcore could not be loaded" + (loader == null ? "" : " (" + loader + ")") +
                        ": put libpatchcore.so.0 (and libpatchcore.so for .NET Core) with libonnxruntime.so.1 " +
                        "next to the application or on LD_LIBRARY_PATH (Mono: see PatchCore.dll.config), " +
                        "or call PatchCoreLibrary.SetLibraryPath on .NET Core 3+. " + e.Message, e);
                }
            }
        }

        /// <summary>The loaded library's version string, e.g. "0.1.0".</summary>
        public static string VersionString
        {
            get
            {
                EnsureCompatible();
                return Errors.FromUtf8(NativeMethods.patchcore_version_string());
            }
        }

        /// <summary>True when the loaded library can run FAISS on a GPU.</summary>
        public static bool GpuAvailable
        {
            get
            {
                EnsureCompatible();
                return NativeMethods.patchcore_gpu_available() != 0;
            }
        }

        /// <summary>
        /// Sets the path of the ONNX Runtime shared library, before the first use of a backbone.
        /// Without it the library tries PATCHCORE_ORT_LIBRARY, libonnxruntime.so.1 next to
        /// libpatchcore.so, then the system loader's search path.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (empty), InvalidState (a backbone already loaded another one).</exception>
        public static void SetOnnxRuntimePath(string path)
        {
            const string fn = "PatchCoreLibrary.SetOnnxRuntimePath";
            Errors.CheckString(path, fn, "path", false);
            EnsureCompatible();
            Errors.Check(NativeMethods.patchcore_set_onnxruntime_path(path));
        }

        /// <summary>Sets the default number of worker threads for objects created afterwards (0 = all cores).</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (negative or above 1024).</exception>
        public static void SetNumThreads(int n)
        {
            EnsureCompatible();
            Errors.Check(NativeMethods.patchcore_set_num_threads(n));
        }

#if NETCOREAPP3_0_OR_GREATER
        /// <summary>
        /// Loads libpatchcore from an explicit path instead of the default probing (application
        /// directory, then the system's). Call before any other member of the binding.
        /// </summary>
        public static void SetLibraryPath(string path)
        {
            Errors.CheckString(path, "PatchCoreLibrary.SetLibraryPath", "path", false);
            NativeMethods.SetLibraryPath(path);
        }
#endif

        /// <summary>
        /// Checks once per process that the loaded library's ABI matches this binding.
        /// Called by every constructor and static entry point of the binding.
        /// </summary>
        /// <exception cref="PatchCoreException">Unsupported when the versions are incompatible.</exception>
        /// <exception cref="DllNotFoundException">libpatchcore cannot be found.</exception>
        public static void EnsureCompatible()
        {
            if (compatible)
            {
                return;
            }
            int n = VersionNumber;
            int major = n / 10000, minor = n / 100 % 100;
            if (major != BindingMajorVersion || minor < BindingMinorVersion)
            {
                throw new PatchCoreException(PatchCoreStatus.Unsupported, string.Format(
                    "libpatchcore {0}.{1}.{2} is incompatible with this binding, which needs {3}.{4} or a later {3}.x",
                    major, minor, n % 100, BindingMajorVersion, BindingMinorVersion));
            }
            compatible = true;
        }
    }
}
