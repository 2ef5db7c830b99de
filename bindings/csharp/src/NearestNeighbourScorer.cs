using System;

namespace PatchCore
{
    /// <summary>Exact nearest-neighbour search (FAISS IndexFlatL2), as the reference's FaissNN.</summary>
    public class FaissNN
    {
        /// <summary>Describes the search.</summary>
        /// <param name="onGpu">search on a GPU (Unsupported in a CPU build)</param>
        /// <param name="numWorkers">search threads, 0..1024, 0 = the library default (the reference's default is 4)</param>
        public FaissNN(bool onGpu = false, int numWorkers = 4)
        {
            OnGpu = onGpu;
            NumWorkers = numWorkers;
        }

        /// <summary>Search on a GPU.</summary>
        public bool OnGpu { get; }

        /// <summary>Search threads (0 = the library default).</summary>
        public int NumWorkers { get; }

        /// <summary>The library's method code.</summary>
        internal virtual NearestNeighbourMethod Method => NearestNeighbourMethod.Exact;
    }

    /// <summary>Approximate search (IVF512,PQ64, nprobe 1), as the reference's ApproximateFaissNN.</summary>
    public sealed class ApproximateFaissNN : FaissNN
    {
        /// <summary>Describes the search (see <see cref="FaissNN"/>).</summary>
        public ApproximateFaissNN(bool onGpu = false, int numWorkers = 4) : base(onGpu, numWorkers)
        {
        }

        internal override NearestNeighbourMethod Method => NearestNeighbourMethod.IvfPq;
    }

    /// <summary>
    /// The reference's NearestNeighbourScorer: a query's score is the mean of its k smallest
    /// squared L2 distances to the fitted features. Predict may run concurrently from many
    /// threads; Fit and Load need exclusive use.
    /// </summary>
    public sealed partial class NearestNeighbourScorer : IDisposable
    {
        private readonly ScorerHandle handle;

        /// <summary>Creates a scorer averaging k neighbours, searching with nnMethod (default: exact FaissNN).</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (k &lt; 1), Unsupported (GPU in a CPU build).</exception>
        public NearestNeighbourScorer(int nNearestNeighbours, FaissNN nnMethod = null)
        {
            PatchCoreLibrary.EnsureCompatible();
            FaissNN m = nnMethod ?? new FaissNN();
            Errors.Check(NativeMethods.patchcore_scorer_create(nNearestNeighbours, (int)m.Method, m.OnGpu ? 1 : 0,
                m.NumWorkers, out handle));
            NumNearestNeighbours = nNearestNeighbours;
        }

        /// <summary>k: neighbours averaged per query.</summary>
        public int NumNearestNeighbours { get; }

        /// <summary>True after <see cref="Dispose"/>.</summary>
        public bool IsDisposed => handle.IsClosed;

        /// <summary>Frees the native scorer. Idempotent.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        /// <summary>Fits on features [rows, dim] (row-major, exactly rows * dim floats; copied).</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (sizes, NaN/Inf).</exception>
        public void Fit(float[] features, int rows, int dim)
        {
            ScorerHandle h = Handle;
            CheckMatrix(features, rows, dim, "NearestNeighbourScorer.Fit", "features");
            Fit(h, features, 0, rows, dim);
        }

        /// <summary>Fits on features [rows, dim] stored at features[offset ..].</summary>
        public void Fit(float[] features, int offset, int rows, int dim)
        {
            const string fn = "NearestNeighbourScorer.Fit";
            ScorerHandle h = Handle;
            Errors.NotNull(features, fn, "features");
            Errors.CheckRange(features.Length, offset, (long)rows * dim, fn, "features");
            Fit(h, features, offset, rows, dim);
        }

        private static unsafe void Fit(ScorerHandle h, float[] features, int offset, int rows, int dim)
        {
            fixed (float* p = features)
            {
                Errors.Check(NativeMethods.patchcore_scorer_fit(h, p + offset, rows, dim));
            }
        }

        /// <summary>Scores queries [rows, dim]: one score per row.</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (sizes, NaN/Inf), InvalidState (not fitted).</exception>
        public float[] Predict(float[] queries, int rows, int dim)
        {
            ScorerHandle h = Handle;
            CheckMatrix(queries, rows, dim, "NearestNeighbourScorer.Predict", "queries");
            var scores = new float[rows];
            PredictCore(h, queries, 0, rows, dim, scores, null, null);
            return scores;
        }

        /// <summary>
        /// Scores queries [rows, dim] and returns, per row, the k squared distances (ascending)
        /// and the indices of those fitted rows, each as [rows, k].
        /// </summary>
        public float[] Predict(float[] queries, int rows, int dim, out float[] distances, out long[] indices)
        {
            const string fn = "NearestNeighbourScorer.Predict";
            ScorerHandle h = Handle;
            CheckMatrix(queries, rows, dim, fn, "queries");
            int n = Errors.Product(fn, "distances", rows, NumNearestNeighbours);
            var scores = new float[rows];
            distances = new float[n];
            indices = new long[n];
            PredictCore(h, queries, 0, rows, dim, scores, distances, indices);
            return scores;
        }

        /// <summary>
        /// Scores queries [rows, dim] at queries[offset ..] into caller arrays: rows scores, and
        /// (when not null) rows * k distances and indices.
        /// </summary>
        public void Predict(float[] queries, int offset, int rows, int dim, float[] scores, float[] distances, long[] indices)
        {
            const string fn = "NearestNeighbourScorer.Predict";
            ScorerHandle h = Handle;
            Errors.NotNull(queries, fn, "queries");
            Errors.CheckRange(queries.Length, offset, (long)rows * dim, fn, "queries");
            Errors.NotNull(scores, fn, "scores");
            Errors.CheckRange(scores.Length, 0, rows, fn, "scores");
            long neighbours = (long)rows * NumNearestNeighbours;
            if (distances != null)
            {
                Errors.CheckRange(distances.Length, 0, neighbours, fn, "distances");
            }
            if (indices != null)
            {
                Errors.CheckRange(indices.Length, 0, neighbours, fn, "indices");
            }
            PredictCore(h, queries, offset, rows, dim, scores, distances, indices);
        }

        private static unsafe void PredictCore(ScorerHandle h, float[] queries, int offset, int rows, int dim,
            float[] scores, float[] distances, long[] indices)
        {
            fixed (float* q = queries)
            fixed (float* s = scores)
            fixed (float* d = distances)
            fixed (long* i = indices)
            {
                Errors.Check(NativeMethods.patchcore_scorer_predict(h, q + offset, rows, dim, s, d, i));
            }
        }

        /// <summary>
        /// Saves with the reference's file names: folder/{prepend}nnscorer_search_index.faiss and,
        /// when saveFeaturesSeparately, folder/{prepend}nnscorer_features.pkl.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidState (not fitted), IO.</exception>
        public void Save(string folder, bool saveFeaturesSeparately = false, string prepend = "")
        {
            const string fn = "NearestNeighbourScorer.Save";
            ScorerHandle h = Handle;
            Errors.CheckString(folder, fn, "folder", false);
            Errors.CheckString(prepend, fn, "prepend", false);
            Errors.Check(NativeMethods.patchcore_scorer_save(h, folder, saveFeaturesSeparately ? 1 : 0, prepend));
        }

        /// <summary>Loads what <see cref="Save"/> (or the reference) wrote.</summary>
        /// <exception cref="PatchCoreException">IO, Format.</exception>
        public void Load(string folder, string prepend = "")
        {
            const string fn = "NearestNeighbourScorer.Load";
            ScorerHandle h = Handle;
            Errors.CheckString(folder, fn, "folder", false);
            Errors.CheckString(prepend, fn, "prepend", false);
            Errors.Check(NativeMethods.patchcore_scorer_load(h, folder, prepend));
        }

        private ScorerHandle Handle
        {
            get
            {
                if (handle.IsClosed)
                {
                    throw new ObjectDisposedException(nameof(NearestNeighbourScorer));
                }
                return handle;
            }
        }

        private static void CheckMatrix(float[] data, int rows, int dim, string fn, string name)
        {
            Errors.NotNull(data, fn, name);
            Errors.Positive(rows, fn, "rows");
            Errors.Positive(dim, fn, "dim");
            if (data.Length != (long)rows * dim)
            {
                throw Errors.Invalid(fn, string.Format("{0} holds {1} floats, not rows {2} * dim {3}",
                    name, data.Length, rows, dim));
            }
        }
    }
}
