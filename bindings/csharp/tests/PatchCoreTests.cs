// Console test runner for the C# binding: each test asserts the binding's results against an
// independent oracle (the reference's golden arrays, a brute-force search written here, a
// formula) or against another path through the library that must agree exactly (files vs
// raw pixels, sequential vs concurrent, saved vs loaded).
//
// Usage: PatchCoreTests.exe [--golden DIR] [NAME_SUBSTRING...]
//   DIR defaults to $PATCHCORE_GOLDEN, else testdata/golden found above the working directory.
// Exit code: 0 when every selected test passed, 1 otherwise.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using PatchCore;

internal static class PatchCoreTests
{
    private static readonly string[] Mnv2Layers = { "block_6_expand_relu", "block_10_expand_relu" };
    private static string golden;

    private static int Main(string[] args)
    {
        var filters = new List<string>();
        golden = Environment.GetEnvironmentVariable("PATCHCORE_GOLDEN");
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--golden" && i + 1 < args.Length)
            {
                golden = args[++i];
            }
            else
            {
                filters.Add(args[i]);
            }
        }
        golden = golden ?? FindGolden();

        var tests = new List<KeyValuePair<string, Action>>
        {
            Test("Version", Version),
            Test("ErrorStatusAndThreadLocalMessages", ErrorStatusAndThreadLocalMessages),
            Test("GoldenFilesMatchReference", GoldenFilesMatchReference),
            Test("RawPixelsMatchFiles", RawPixelsMatchFiles),
            Test("GoldenFeaturesMatchReference", GoldenFeaturesMatchReference),
            Test("EmbedMatchesGolden", EmbedMatchesGolden),
            Test("AggregatorMatchesGolden", AggregatorMatchesGolden),
            Test("SegmentorMatchesGolden", SegmentorMatchesGolden),
            Test("AdaptiveAvgPool1dMatchesFormula", AdaptiveAvgPool1dMatchesFormula),
            Test("FeaturesMatchBruteForce", FeaturesMatchBruteForce),
            Test("ScorerMatchesBruteForce", ScorerMatchesBruteForce),
            Test("SaveLoadRoundTrip", SaveLoadRoundTrip),
            Test("CalibrationAndSegment", CalibrationAndSegment),
            Test("ConcurrentPredictMatchesSequential", ConcurrentPredictMatchesSequential),
            Test("DisposeTwiceAndUseAfterDispose", DisposeTwiceAndUseAfterDispose),
            Test("BadArguments", BadArguments),
            Test("CreateAndDispose10000Models", CreateAndDispose10000Models),
#if PATCHCORE_SPAN
            Test("SpanOverloadsMatchArrays", SpanOverloadsMatchArrays),
#endif
        };

        int passed = 0, failed = 0;
        foreach (var t in tests)
        {
            if (filters.Count > 0 && !filters.Any(f => t.Key.IndexOf(f, StringComparison.OrdinalIgnoreCase) >= 0))
            {
                continue;
            }
            var sw = Stopwatch.StartNew();
            try
            {
                t.Value();
                passed++;
                Console.WriteLine("ok    {0} ({1:F1} s)", t.Key, sw.Elapsed.TotalSeconds);
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine("FAIL  {0}: {1}", t.Key, e);
            }
        }
        Console.WriteLine("{0} passed, {1} failed", passed, failed);
        return failed == 0 && passed > 0 ? 0 : 1;
    }

    private static KeyValuePair<string, Action> Test(string name, Action body)
    {
        return new KeyValuePair<string, Action>(name, body);
    }

    // ----------------------------------------------------------------- tests

    private static void Version()
    {
        System.Version v = PatchCoreLibrary.Version;
        Equal(PatchCoreLibrary.BindingMajorVersion, v.Major, "major version");
        Equal(v.Major * 10000 + v.Minor * 100 + v.Build, PatchCoreLibrary.VersionNumber, "version number");
        Equal(v.ToString(3), PatchCoreLibrary.VersionString, "version string");
        PatchCoreLibrary.EnsureCompatible();
    }

    private static void ErrorStatusAndThreadLocalMessages()
    {
        var e = Throws<PatchCoreException>(() => new NearestNeighbourScorer(0));
        Equal(PatchCoreStatus.InvalidArgument, e.Status, "status");
        True(e.NativeMessage.Contains("patchcore_scorer_create"), "message names the function: " + e.NativeMessage);
        True(e.Message.StartsWith("PATCHCORE_ERR_INVALID_ARGUMENT: "), "message prefix: " + e.Message);

        // Every thread must see its own last error, never another thread's.
        var errors = new string[8];
        RunThreads(8, t =>
        {
            for (int i = 0; i < 200; i++)
            {
                int k = -(1000 * t + i) - 1;
                var ex = Throws<PatchCoreException>(() => new NearestNeighbourScorer(k));
                if (!ex.NativeMessage.Contains(k.ToString()))
                {
                    errors[t] = "thread " + t + " got " + ex.NativeMessage + " for k = " + k;
                    return;
                }
            }
        });
        foreach (string err in errors)
        {
            True(err == null, err);
        }
    }

    private static void GoldenFilesMatchReference()
    {
        float[] expected = Npy.Read(Golden("mnv2/image_scores_k1.npy")).F32;
        float[] segmentations = Npy.Read(Golden("mnv2/segmentations_k1.npy")).F32;
        using (PatchCoreModel m = NewMnv2Model())
        {
            m.FitFiles(TrainFiles());
            Equal(1568L, m.MemoryBankRows, "bank rows (2 images x 28 x 28, identity sampler)");
            Equal(28, m.GridHeight, "grid height");
            Equal(28, m.GridWidth, "grid width");
            Equal(224 * 224, m.MapSize, "map size");
            PatchCoreResult r = m.PredictFiles(TestFiles());
            Close(expected, r.Scores, 1e-3, "image scores vs golden image_scores_k1");
            Equal(224, r.MapHeight, "map height");
            Close(segmentations, r.Maps, 1e-3, "maps vs golden segmentations_k1");
            True(r.Scores[1] > r.Scores[0], "the stain image scores above the good one");
        }
    }

    private static void RawPixelsMatchFiles()
    {
        PatchCoreResult fromFiles;
        using (PatchCoreModel m = NewMnv2Model())
        {
            m.FitFiles(TrainFiles());
            fromFiles = m.PredictFiles(TestFiles());
        }
        Png[] train = TrainFiles().Select(Png.Read).ToArray();
        Png[] test = TestFiles().Select(Png.Read).ToArray();
        var rgb = new ImageLayout(256, 256, 3, PixelFormat.Rgb);
        using (PatchCoreModel m = NewMnv2Model())
        {
            // Both training images in one packed RGB buffer.
            m.Fit(Concat(train[0].Pixels, train[1].Pixels), 0, 2, rgb);

            // byte[] + offset, packed RGB, both test images at once.
            PatchCoreResult r = m.Predict(Concat(test[0].Pixels, test[1].Pixels), 0, 2, rgb);
            Identical(fromFiles.Scores, r.Scores, "byte[] RGB scores vs files");
            Identical(fromFiles.Maps, r.Maps, "byte[] RGB maps vs files");

            // One image at an offset inside a larger buffer.
            byte[] padded = Concat(new byte[17], test[1].Pixels, new byte[5]);
            PatchCoreResult one = m.Predict(padded, 17, 1, rgb, withMaps: false);
            Null(one.Maps, "maps not requested");
            Identical(new[] { fromFiles.Scores[1] }, one.Scores, "offset image score");

            // A camera-style frame in unmanaged memory: BGRA (4 channels), rows padded to 1088 bytes.
            var bgra = new ImageLayout(256, 256, 4, PixelFormat.Bgr, 1088);
            IntPtr frame = Marshal.AllocHGlobal((int)bgra.ImageBytes * 2);
            try
            {
                for (int i = 0; i < 2; i++)
                {
                    byte[] px = ToBgra(test[i].Pixels, 256, 256, bgra.Stride);
                    Marshal.Copy(px, 0, frame + (int)bgra.ImageBytes * i, px.Length);
                }
                PatchCoreResult fromFrame = m.Predict(frame, 2, bgra);
                Identical(fromFiles.Scores, fromFrame.Scores, "IntPtr BGRA strided scores vs files");
                Identical(fromFiles.Maps, fromFrame.Maps, "IntPtr BGRA strided maps vs files");

                // The allocation-free overload writing into caller arrays at offsets.
                var scores = new float[3];
                var maps = new float[1 + 2 * m.MapSize];
                m.Predict(frame, 2, bgra, scores, 1, maps, 1);
                Identical(fromFiles.Scores, scores.Skip(1).ToArray(), "caller-array scores");
                Identical(fromFiles.Maps, maps.Skip(1).ToArray(), "caller-array maps");
            }
            finally
            {
                Marshal.FreeHGlobal(frame);
            }

            // Gray images are replicated to three channels.
            byte[] gray = ToGray(test[0].Pixels);
            byte[] grayRgb = new byte[gray.Length * 3];
            for (int i = 0; i < gray.Length; i++)
            {
                grayRgb[3 * i] = grayRgb[3 * i + 1] = grayRgb[3 * i + 2] = gray[i];
            }
            float g1 = m.Predict(gray, new ImageLayout(256, 256, 1, PixelFormat.Rgb), false).Scores[0];
            float g3 = m.Predict(grayRgb, rgb, false).Scores[0];
            Identical(new[] { g3 }, new[] { g1 }, "1-channel vs replicated 3-channel");
        }
    }

    private static void GoldenFeaturesMatchReference()
    {
        float[] expected = Npy.Read(Golden("mnv2/image_scores_k1.npy")).F32;
        float[] segmentations = Npy.Read(Golden("mnv2/segmentations_k1.npy")).F32;
        using (PatchCoreModel m = NewFeaturesModel(Mnv2Layers, 1024, 1024))
        {
            m.FitFeatures(GoldenFeatures("train"));
            Equal(1568L, m.MemoryBankRows, "bank rows");
            PatchCoreResult r = m.PredictFeatures(GoldenFeatures("test"));
            Close(expected, r.Scores, 1e-3, "image scores vs golden");
            Close(segmentations, r.Maps, 1e-3, "maps vs golden segmentations");
        }
    }

    private static void EmbedMatchesGolden()
    {
        float[] expected = Npy.Read(Golden("mnv2/embed_test.npy")).F32;
        float[] embed = PatchCoreOps.Embed(GoldenFeatures("test"), 3, 1024, 1024);
        Close(expected, embed, 1e-5, "embeddings vs golden embed_test");
    }

    private static void AggregatorMatchesGolden()
    {
        // input_onnx_pm1 holds train0, train1, test0, test1: keep the test images.
        float[] input = Npy.Read(Golden("mnv2/input_onnx_pm1.npy")).F32.Skip(2 * 3 * 224 * 224).ToArray();
        using (var agg = new NetworkFeatureAggregator(Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"), Mnv2Layers))
        {
            FeatureShape[] shapes = agg.FeatureDimensions(3, 224, 224);
            Equal("192x28x28,384x14x14", string.Join(",", shapes.Select(s => s.ToString())), "feature dimensions");
            FeatureMap[] maps = agg.Forward(input, 2, 3, 224, 224);
            Close(Npy.Read(Golden("mnv2/block6_test.npy")).F32, maps[0].Data, 1e-4, "block_6 vs golden");
            Close(Npy.Read(Golden("mnv2/block10_test.npy")).F32, maps[1].Data, 1e-4, "block_10 vs golden");
            Equal(2, maps[1].N, "N");
            Equal(384, maps[1].Channels, "C");
        }
        byte[] onnx = File.ReadAllBytes(Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"));
        using (var agg = new NetworkFeatureAggregator(onnx, new[] { "block_10_expand_relu" }))
        {
            FeatureMap map = agg.Forward(input, 2, 3, 224, 224, 0);
            Close(Npy.Read(Golden("mnv2/block10_test.npy")).F32, map.Data, 1e-4, "block_10 from ONNX bytes");
        }
    }

    private static void SegmentorMatchesGolden()
    {
        float[] patch = Npy.Read(Golden("mnv2/patch_scores_k1.npy")).F32;
        float[] expected = Npy.Read(Golden("mnv2/segmentations_k1.npy")).F32;
        using (var seg = new RescaleSegmentor(224, 224, 4))
        {
            Close(expected, seg.ConvertToSegmentation(patch, 2, 28, 28), 1e-5, "segmentations vs golden");
            var output = new float[3 + 2 * 224 * 224];
            seg.ConvertToSegmentation(patch, 0, 2, 28, 28, output, 3);
            Close(expected, output.Skip(3).ToArray(), 1e-5, "segmentations at an offset");
        }
    }

    private static void AdaptiveAvgPool1dMatchesFormula()
    {
        var rnd = new Random(7);
        foreach (int[] c in new[] { new[] { 3, 10, 4 }, new[] { 2, 7, 7 }, new[] { 4, 5, 9 } })
        {
            int rows = c[0], inLen = c[1], outLen = c[2];
            float[] x = RandomFloats(rnd, rows * inLen);
            float[] got = PatchCoreOps.AdaptiveAvgPool1d(x, rows, inLen, outLen);
            var want = new float[rows * outLen];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < outLen; i++)
                {
                    int lo = i * inLen / outLen, hi = ((i + 1) * inLen + outLen - 1) / outLen;
                    double s = 0;
                    for (int j = lo; j < hi; j++)
                    {
                        s += x[r * inLen + j];
                    }
                    want[r * outLen + i] = (float)(s / (hi - lo));
                }
            }
            Close(want, got, 1e-6, "adaptive_avg_pool1d " + string.Join("/", c));
        }
    }

    private static void FeaturesMatchBruteForce()
    {
        var rnd = new Random(11);
        string[] layers = { "a", "b" };
        FeatureMap[] train = { new FeatureMap(RandomFloats(rnd, 3 * 4 * 6 * 6), 3, 4, 6, 6), new FeatureMap(RandomFloats(rnd, 3 * 8 * 3 * 3), 3, 8, 3, 3) };
        FeatureMap[] test = { new FeatureMap(RandomFloats(rnd, 2 * 4 * 6 * 6), 2, 4, 6, 6), new FeatureMap(RandomFloats(rnd, 2 * 8 * 3 * 3), 2, 8, 3, 3) };
        float[] bank = PatchCoreOps.Embed(train, 3, 16, 8);
        float[] queries = PatchCoreOps.Embed(test, 3, 16, 8);
        Equal(3 * 36 * 8, bank.Length, "bank size");
        foreach (int k in new[] { 1, 3 })
        {
            var want = new float[2];
            for (int img = 0; img < 2; img++)
            {
                double best = double.MinValue;
                for (int p = 0; p < 36; p++)
                {
                    double[] d = BruteForce(bank, 8, queries, img * 36 + p, k, out long[] _);
                    best = Math.Max(best, d.Average());
                }
                want[img] = (float)best;
            }
            using (PatchCoreModel m = NewFeaturesModel(layers, 16, 8, k))
            {
                m.FitFeatures(train);
                Equal(108L, m.MemoryBankRows, "bank rows");
                Equal(6, m.GridHeight, "grid height");
                Close(want, m.PredictFeatures(test, withMaps: false).Scores, 1e-4, "image scores vs brute force, k=" + k);
            }
        }
    }

    private static void ScorerMatchesBruteForce()
    {
        var rnd = new Random(3);
        const int n = 300, q = 40, d = 16, k = 3;
        float[] bank = RandomFloats(rnd, n * d);
        float[] queries = RandomFloats(rnd, q * d);
        using (var scorer = new NearestNeighbourScorer(k, new FaissNN(numWorkers: 2)))
        {
            Equal(k, scorer.NumNearestNeighbours, "k");
            scorer.Fit(bank, n, d);
            float[] scores = scorer.Predict(queries, q, d, out float[] distances, out long[] indices);
            int agree = 0;
            for (int i = 0; i < q; i++)
            {
                double[] want = BruteForce(bank, d, queries, i, k, out long[] wantIdx);
                Close(want.Select(x => (float)x).ToArray(), distances.Skip(i * k).Take(k).ToArray(), 1e-4, "distances row " + i);
                Close(new[] { (float)want.Average() }, new[] { scores[i] }, 1e-4, "score row " + i);
                agree += wantIdx.Where((x, j) => x == indices[i * k + j]).Count();
            }
            True(agree >= q * k * 99 / 100, "neighbour indices agree: " + agree + " of " + q * k);

            // Scores only, into a caller array, from an offset.
            float[] shifted = Concat(new float[d], queries);
            var only = new float[q];
            scorer.Predict(shifted, d, q, d, only, null, null);
            Identical(scores, only, "scores-only predict from an offset");
        }
    }

    private static void SaveLoadRoundTrip()
    {
        string dir = Path.Combine(Path.GetTempPath(), "patchcore-cs-" + Process.GetCurrentProcess().Id);
        Directory.CreateDirectory(dir);
        try
        {
            FeatureMap[] test = GoldenFeatures("test");
            using (PatchCoreModel m = NewFeaturesModel(Mnv2Layers, 1024, 1024))
            {
                m.FitFeatures(GoldenFeatures("train"));
                m.CalibrateScores(new float[] { 150, 160, 170 }, null, CalibrationMethod.Quantile, 1.0);
                PatchCoreResult want = m.PredictFeatures(test);

                byte[] bytes = m.SaveToBytes();
                using (PatchCoreModel b = PatchCoreModel.LoadFromBytes(bytes))
                {
                    PatchCoreResult got = b.PredictFeatures(test);
                    Identical(want.Scores, got.Scores, "scores after LoadFromBytes");
                    Identical(want.Maps, got.Maps, "maps after LoadFromBytes");
                    Equal(170f, b.Threshold, "threshold survives the round trip");
                    Equal(1568L, b.MemoryBankRows, "bank rows after load");
                }
                using (PatchCoreModel b = PatchCoreModel.LoadFromBytes(Concat(new byte[9], bytes), 9, bytes.Length))
                {
                    Identical(want.Scores, b.PredictFeatures(test, false).Scores, "scores after LoadFromBytes at an offset");
                }

                string path = Path.Combine(dir, "model ü.pcm"); // a non-ASCII path goes through UTF-8
                m.Save(path);
                using (PatchCoreModel f = PatchCoreModel.Load(path))
                {
                    Identical(want.Scores, f.PredictFeatures(test, false).Scores, "scores after Load");
                }

                byte[] truncated = bytes.Take(bytes.Length / 2).ToArray();
                Status(PatchCoreStatus.Format, () => PatchCoreModel.LoadFromBytes(truncated));
                string bad = Path.Combine(dir, "garbage.pcm");
                File.WriteAllBytes(bad, Encoding.ASCII.GetBytes("this is not a model file"));
                var e = Status(PatchCoreStatus.Format, () => PatchCoreModel.Load(bad));
                True(e.NativeMessage.Contains("garbage.pcm"), "FORMAT message names the path: " + e.NativeMessage);
                Status(PatchCoreStatus.IO, () => PatchCoreModel.Load(Path.Combine(dir, "missing.pcm")));
            }
            // A model with a backbone records it by name: Load finds it next to the model file
            // or at backbonePath; a buffer has no folder, so LoadFromBytes needs backbonePath.
            string onnx = Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx");
            using (PatchCoreModel m = NewMnv2Model())
            {
                m.FitFiles(TrainFiles());
                PatchCoreResult want = m.PredictFiles(TestFiles(), false);
                string path = Path.Combine(dir, "mnv2.pcm");
                m.Save(path);
                using (PatchCoreModel f = PatchCoreModel.Load(path, onnx))
                {
                    Identical(want.Scores, f.PredictFiles(TestFiles(), false).Scores, "image model scores after Load");
                }
                File.Copy(onnx, Path.Combine(dir, Path.GetFileName(onnx)));
                using (PatchCoreModel f = PatchCoreModel.Load(path))
                {
                    Identical(want.Scores, f.PredictFiles(TestFiles(), false).Scores, "backbone found next to the model");
                }
                byte[] bytes = m.SaveToBytes();
                using (PatchCoreModel b = PatchCoreModel.LoadFromBytes(bytes, onnx))
                {
                    Identical(want.Scores, b.PredictFiles(TestFiles(), false).Scores, "image model scores after LoadFromBytes");
                }
                string wrong = Golden("mnv2/png/train_good_000.png");
                Status(PatchCoreStatus.InvalidArgument, () => PatchCoreModel.LoadFromBytes(bytes, wrong));
            }
            using (PatchCoreModel unfitted = NewFeaturesModel(Mnv2Layers, 1024, 1024))
            {
                Status(PatchCoreStatus.InvalidState, () => unfitted.SaveToBytes());
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static void CalibrationAndSegment()
    {
        using (PatchCoreModel m = NewFeaturesModel(Mnv2Layers, 1024, 1024))
        {
            m.FitFeatures(GoldenFeatures("train"));
            True(float.IsNaN(m.Threshold), "no threshold before calibration");
            Status(PatchCoreStatus.InvalidState, () => m.Segment(new float[] { 1, 2 }));
            Status(PatchCoreStatus.InvalidState, () => m.NormalizeScores(new float[] { 1 }));

            float[] good = { 3, 1, 4, 1.5f, 9, 2.5f, 6 };
            float t = m.CalibrateScores(good, null, CalibrationMethod.Quantile, 0.5);
            Close(new[] { (float)Quantile(good, 0.5) }, new[] { t }, 1e-6, "median");
            Equal(t, m.Threshold, "stored threshold");
            t = m.CalibrateScores(good, null, CalibrationMethod.Quantile, 0.9);
            Close(new[] { (float)Quantile(good, 0.9) }, new[] { t }, 1e-6, "0.9 quantile");

            double mean = good.Average(x => (double)x);
            double std = Math.Sqrt(good.Average(x => (x - mean) * (x - mean)));
            t = m.CalibrateScores(good, null, CalibrationMethod.MeanStd, 2);
            Close(new[] { (float)(mean + 2 * std) }, new[] { t }, 1e-6, "mean + 2 std");

            // With labels, quantile uses the good scores only.
            t = m.CalibrateScores(new float[] { 1, 2, 100, 3 }, new[] { 0, 0, 1, 0 }, CalibrationMethod.Quantile, 1.0);
            Equal(3f, t, "max of the good scores");
            float[] norm = m.NormalizeScores(new float[] { 3, 1, 100, 52.5f });
            Close(new[] { 0.5f, 0.5f - 2f / 99, 1f, 1f }, norm, 1e-6, "normalised scores");

            t = m.CalibrateScores(new float[] { 1, 2, 3, 10, 11 }, new[] { 0, 0, 0, 1, 1 }, CalibrationMethod.F1, 0);
            True(t >= 3 && t <= 10, "F1 threshold separates the classes: " + t);
            Status(PatchCoreStatus.InvalidArgument, () => m.CalibrateScores(new float[] { 1, 2 }, null, CalibrationMethod.F1, 0));

            // Segment: explicit threshold, then the calibrated one (NaN).
            var rnd = new Random(5);
            float[] maps = RandomFloats(rnd, 1000);
            byte[] masks = m.Segment(maps, 0.25f);
            for (int i = 0; i < maps.Length; i++)
            {
                Equal(maps[i] >= 0.25f ? (byte)1 : (byte)0, masks[i], "mask " + i);
            }
            m.CalibrateScores(new float[] { 0.6f }, null, CalibrationMethod.Quantile, 1.0);
            var into = new byte[1002];
            m.Segment(maps, 0, maps.Length, into, 2);
            for (int i = 0; i < maps.Length; i++)
            {
                Equal(maps[i] >= 0.6f ? (byte)1 : (byte)0, into[i + 2], "calibrated mask " + i);
            }
            Equal(0, m.Segment(new float[0]).Length, "empty segment");
        }
    }

    private static void ConcurrentPredictMatchesSequential()
    {
        Png[] test = TestFiles().Select(Png.Read).ToArray();
        var rgb = new ImageLayout(256, 256, 3, PixelFormat.Rgb);
        byte[] both = Concat(test[0].Pixels, test[1].Pixels);
        using (PatchCoreModel m = NewMnv2Model())
        {
            m.FitFiles(TrainFiles());
            PatchCoreResult want = m.Predict(both, 0, 2, rgb);
            var failures = new string[8];
            RunThreads(8, t =>
            {
                for (int i = 0; i < 2; i++)
                {
                    PatchCoreResult got = m.Predict(both, 0, 2, rgb);
                    if (!got.Scores.SequenceEqual(want.Scores) || !got.Maps.SequenceEqual(want.Maps))
                    {
                        failures[t] = "thread " + t + " iteration " + i + " differs: " + string.Join(",", got.Scores);
                        return;
                    }
                }
            });
            foreach (string f in failures)
            {
                True(f == null, f);
            }
        }

        // The same on a features-only model, with more iterations.
        using (PatchCoreModel m = NewFeaturesModel(Mnv2Layers, 1024, 1024))
        {
            m.FitFeatures(GoldenFeatures("train"));
            FeatureMap[] features = GoldenFeatures("test");
            PatchCoreResult want = m.PredictFeatures(features);
            var failures = new string[8];
            RunThreads(8, t =>
            {
                for (int i = 0; i < 5; i++)
                {
                    PatchCoreResult got = m.PredictFeatures(features);
                    if (!got.Scores.SequenceEqual(want.Scores) || !got.Maps.SequenceEqual(want.Maps))
                    {
                        failures[t] = "thread " + t + " iteration " + i + " differs";
                        return;
                    }
                }
            });
            foreach (string f in failures)
            {
                True(f == null, f);
            }
        }
    }

    private static void DisposeTwiceAndUseAfterDispose()
    {
        PatchCoreModel m = NewFeaturesModel(new[] { "a" }, 8, 8);
        m.FitFeatures(new[] { new FeatureMap(new float[2 * 4 * 3 * 3], 2, 4, 3, 3) });
        m.Dispose();
        m.Dispose();
        True(m.IsDisposed, "model IsDisposed");
        var fm = new[] { new FeatureMap(new float[4 * 3 * 3], 1, 4, 3, 3) };
        Throws<ObjectDisposedException>(() => m.PredictFeatures(fm));
        Throws<ObjectDisposedException>(() => m.AddFeatures(fm));
        Throws<ObjectDisposedException>(() => m.Fit());
        Throws<ObjectDisposedException>(() => m.Predict(new byte[12], new ImageLayout(2, 2, 3, PixelFormat.Rgb)));
        Throws<ObjectDisposedException>(() => m.SaveToBytes());
        Throws<ObjectDisposedException>(() => m.Segment(new float[1], 0));
        Throws<ObjectDisposedException>(() => { long unused = m.MemoryBankRows; });
        Throws<ObjectDisposedException>(() => { float unused = m.Threshold; });

        var s = new NearestNeighbourScorer(1);
        s.Dispose();
        s.Dispose();
        Throws<ObjectDisposedException>(() => s.Fit(new float[4], 2, 2));
        Throws<ObjectDisposedException>(() => s.Predict(new float[4], 2, 2));

        var seg = new RescaleSegmentor(8, 8);
        seg.Dispose();
        seg.Dispose();
        Throws<ObjectDisposedException>(() => seg.ConvertToSegmentation(new float[4], 1, 2, 2));

        var agg = new NetworkFeatureAggregator(Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"), Mnv2Layers);
        agg.Dispose();
        agg.Dispose();
        Throws<ObjectDisposedException>(() => agg.FeatureDimensions(3, 224, 224));
    }

    private static void BadArguments()
    {
        var rgb = new ImageLayout(4, 4, 3, PixelFormat.Rgb);
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(null));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig { PatchSize = 4 }));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig { Mean = new float[] { 0.5f, 0.5f } }));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig { Layers = new string[0] }));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig { Layers = new[] { "a", null } }));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig { Sampler = "bogus" }));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig { Device = "cpu\0x" }));
        Status(PatchCoreStatus.InvalidArgument, () => new PatchCoreModel(new PatchCoreConfig
        {
            BackbonePath = Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"),
            Layers = new[] { "no_such_layer" },
        }));
        Status(PatchCoreStatus.IO, () => new PatchCoreModel(new PatchCoreConfig
        {
            BackbonePath = "/nonexistent/backbone.onnx",
            Layers = Mnv2Layers,
        }));
        Status(PatchCoreStatus.InvalidArgument, () => new FeatureMap(null, 1, 1, 1, 1));
        Status(PatchCoreStatus.InvalidArgument, () => new FeatureMap(new float[5], 1, 1, 2, 2));
        Status(PatchCoreStatus.InvalidArgument, () => new FeatureMap(new float[4], 2, 1, 2, 2));
        Status(PatchCoreStatus.InvalidArgument, () => new FeatureMap(new float[4], 1, 0, 2, 2));
        Status(PatchCoreStatus.InvalidArgument, () => new FeatureMap(IntPtr.Zero, 1, 1, 1, 1));
        Status(PatchCoreStatus.InvalidArgument, () => new FeatureMap(new float[4], 0, 1 << 16, 1 << 16, 1, 1));

        using (PatchCoreModel images = NewMnv2Model())
        {
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages((byte[])null, 0, 1, rgb));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[47], 0, 1, rgb));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], 1, 1, rgb));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], -1, 1, rgb));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], 0, 0, rgb));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], 0, 1, new ImageLayout(4, 4, 2, PixelFormat.Rgb)));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], 0, 1, new ImageLayout(4, 4, 3, PixelFormat.Rgb, 11)));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], 0, 1, default(ImageLayout)));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(new byte[48], 0, 1, new ImageLayout(4, 4, 3, (PixelFormat)7)));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddImages(IntPtr.Zero, 1, rgb));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddFiles(null));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddFiles(new string[0]));
            Status(PatchCoreStatus.InvalidArgument, () => images.AddFiles(new[] { TrainFiles()[0], null }));
            Status(PatchCoreStatus.IO, () => images.AddFiles(new[] { "/nonexistent/x.png" }));
            Status(PatchCoreStatus.Format, () => images.AddFiles(new[] { Golden("mnv2/golden.json") }));
            Status(PatchCoreStatus.InvalidState, () => images.Predict(new byte[48], rgb));
            Status(PatchCoreStatus.InvalidState, () => images.Fit());
        }

        using (PatchCoreModel m = NewFeaturesModel(new[] { "a", "b" }, 8, 8))
        {
            var a = new FeatureMap(new float[2 * 4 * 4 * 4], 2, 4, 4, 4);
            var b = new FeatureMap(new float[2 * 2 * 2 * 2], 2, 2, 2, 2);
            Status(PatchCoreStatus.InvalidState, () => m.AddImages(new byte[48], 0, 1, rgb));
            Status(PatchCoreStatus.InvalidState, () => m.PredictFeatures(new[] { a, b }));
            Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(null));
            Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(new FeatureMap[0]));
            Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(new[] { a }));
            Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(new[] { a, null }));
            Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(new[] { a, new FeatureMap(new float[3 * 8], 3, 2, 2, 2) }));
            var nan = new float[2 * 4 * 4 * 4];
            nan[17] = float.NaN;
            var e = Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(new[] { new FeatureMap(nan, 2, 4, 4, 4), b }));
            True(e.NativeMessage.IndexOf("nan", StringComparison.OrdinalIgnoreCase) >= 0, "NaN message: " + e.NativeMessage);
            var inf = new float[2 * 2 * 2 * 2];
            inf[3] = float.PositiveInfinity;
            Status(PatchCoreStatus.InvalidArgument, () => m.AddFeatures(new[] { a, new FeatureMap(inf, 2, 2, 2, 2) }));
            m.FitFeatures(new[] { a, b });
            Status(PatchCoreStatus.InvalidArgument, () => m.Predict(new byte[48], 0, 1, rgb, null, 0, null, 0));
            Status(PatchCoreStatus.InvalidArgument, () => m.Segment(null));
            Status(PatchCoreStatus.InvalidArgument, () => m.Segment(new float[4], 0, 4, new byte[3], 0, 1));
            Status(PatchCoreStatus.InvalidArgument, () => m.Segment(new float[4], 1, 4, new byte[4], 0, 1));
            Status(PatchCoreStatus.InvalidArgument, () => m.CalibrateScores(null, null, CalibrationMethod.Quantile, 0.5));
            Status(PatchCoreStatus.InvalidArgument, () => m.CalibrateScores(new float[] { 1, 2 }, new[] { 0 }, CalibrationMethod.Quantile, 0.5));
            Status(PatchCoreStatus.InvalidArgument, () => m.CalibrateScores(new float[] { 1, float.NaN }, null, CalibrationMethod.Quantile, 0.5));
            Status(PatchCoreStatus.InvalidArgument, () => m.CalibrateScores(new float[] { 1, 2 }, null, CalibrationMethod.Quantile, 1.5));
            Status(PatchCoreStatus.InvalidArgument, () => m.CalibrateScores(new float[] { 1, 2 }, null, (CalibrationMethod)9, 0.5));
            Status(PatchCoreStatus.InvalidArgument, () => m.GetInt((PatchCoreParameter)999));
            Status(PatchCoreStatus.InvalidArgument, () => m.Save(null));
            Status(PatchCoreStatus.InvalidArgument, () => m.Save("bad\0path"));
            Status(PatchCoreStatus.IO, () => m.Save("/nonexistent/dir/model.pcm"));
            Status(PatchCoreStatus.InvalidArgument, () => PatchCoreModel.LoadFromBytes(null));
            Status(PatchCoreStatus.InvalidArgument, () => PatchCoreModel.LoadFromBytes(new byte[10], 5, 6));
        }

        using (var s = new NearestNeighbourScorer(2))
        {
            Status(PatchCoreStatus.InvalidArgument, () => s.Fit(null, 2, 2));
            Status(PatchCoreStatus.InvalidArgument, () => s.Fit(new float[5], 2, 2));
            Status(PatchCoreStatus.InvalidArgument, () => s.Fit(new float[] { 1, 2, float.NaN, 4 }, 2, 2));
            Status(PatchCoreStatus.InvalidState, () => s.Predict(new float[4], 2, 2));
            s.Fit(new float[] { 0, 0, 1, 1, 2, 2 }, 3, 2);
            Status(PatchCoreStatus.InvalidArgument, () => s.Predict(new float[3], 1, 3));
            Status(PatchCoreStatus.InvalidArgument, () => s.Predict(new float[4], 0, 2, 2, new float[1], null, null));
            Status(PatchCoreStatus.InvalidArgument, () => s.Predict(new float[4], 0, 2, 2, new float[2], new float[3], null));
        }
        Status(PatchCoreStatus.InvalidArgument, () => new NearestNeighbourScorer(1, new FaissNN(numWorkers: -1)));
        Status(PatchCoreStatus.InvalidArgument, () => new RescaleSegmentor(0, 8));
        Status(PatchCoreStatus.InvalidArgument, () => new RescaleSegmentor(8, 8, double.NaN));
        using (var seg = new RescaleSegmentor(8, 8))
        {
            Status(PatchCoreStatus.InvalidArgument, () => seg.ConvertToSegmentation(new float[5], 1, 2, 2));
            Status(PatchCoreStatus.InvalidArgument, () => seg.ConvertToSegmentation(new float[4], 0, 1, 2, 2, new float[63], 0));
        }
        Status(PatchCoreStatus.InvalidArgument, () => new NetworkFeatureAggregator((string)null, Mnv2Layers));
        Status(PatchCoreStatus.InvalidArgument, () => new NetworkFeatureAggregator(Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"), null));
        Status(PatchCoreStatus.Format, () => new NetworkFeatureAggregator(new byte[] { 1, 2, 3 }, Mnv2Layers));
        Status(PatchCoreStatus.InvalidArgument, () => PatchCoreOps.AdaptiveAvgPool1d(new float[5], 2, 3, 2));
        Status(PatchCoreStatus.InvalidArgument, () => PatchCoreOps.Embed(new FeatureMap[0], 3, 8, 8));
        Status(PatchCoreStatus.InvalidArgument, () => PatchCoreLibrary.SetNumThreads(-1));
        Status(PatchCoreStatus.InvalidArgument, () => PatchCoreLibrary.SetOnnxRuntimePath(""));
    }

    private static void CreateAndDispose10000Models()
    {
        // Small models, but each holds ~250 KiB natively (a 512 x 32 bank, its index, the
        // pending embeddings): 9000 leaked models would grow the process by ~2 GiB. Each
        // cycle creates, fits and predicts; the working set after 1,000 cycles and after
        // 10,000 (docs/reliability.md) must differ by less than 16 MiB.
        var rnd = new Random(2);
        var train = new[] { new FeatureMap(RandomFloats(rnd, 2 * 8 * 16 * 16), 2, 8, 16, 16) };
        var test = new[] { new FeatureMap(RandomFloats(rnd, 1 * 8 * 16 * 16), 1, 8, 16, 16) };
        float expected = 0;
        Action<int> cycle = i =>
        {
            using (PatchCoreModel m = NewFeaturesModel(new[] { "a" }, 32, 32))
            {
                m.FitFeatures(train);
                float s = m.PredictFeatures(test, false).Scores[0];
                if (i == 0)
                {
                    expected = s;
                }
                else if (s != expected)
                {
                    throw new Exception("model " + i + " scored " + s + ", the first " + expected);
                }
            }
        };
        for (int i = 0; i < 1000; i++)
        {
            cycle(i);
        }
        long before = WorkingSet();
        for (int i = 1000; i < 10000; i++)
        {
            cycle(i);
        }
        long after = WorkingSet();

        // Models left to the finalizer are freed on the finalizer thread: in batches of 20 with
        // a collection after each, the library reuses their memory (~50 MiB if leaked).
        for (int batch = 0; batch < 10; batch++)
        {
            for (int i = 0; i < 20; i++)
            {
                NewFeaturesModel(new[] { "a" }, 32, 32).FitFeatures(train);
            }
            WorkingSet();
        }
        long finalized = WorkingSet();
        Console.WriteLine("      working set: {0:F1} MiB after 1000 models, {1:F1} MiB after 10000, {2:F1} MiB after 200 more finalized",
            before / 1048576.0, after / 1048576.0, finalized / 1048576.0);
        True(after - before < (16L << 20), "working set grew by " + ((after - before) >> 20) + " MiB over 9000 disposed models");
        True(finalized - after < (24L << 20), "working set grew by " + ((finalized - after) >> 20) + " MiB over 200 finalized models");
    }

#if PATCHCORE_SPAN
    private static void SpanOverloadsMatchArrays()
    {
        Png[] test = TestFiles().Select(Png.Read).ToArray();
        var rgb = new ImageLayout(256, 256, 3, PixelFormat.Rgb);
        byte[] both = Concat(test[0].Pixels, test[1].Pixels);
        using (PatchCoreModel m = NewMnv2Model())
        {
            Png[] train = TrainFiles().Select(Png.Read).ToArray();
            m.AddImages(new ReadOnlySpan<byte>(Concat(train[0].Pixels, train[1].Pixels)), 2, rgb);
            m.Fit();
            PatchCoreResult want = m.Predict(both, 0, 2, rgb);
            var scores = new float[2];
            var maps = new float[2 * m.MapSize];
            m.Predict(new ReadOnlySpan<byte>(both), 2, rgb, scores, maps);
            Identical(want.Scores, scores, "span scores");
            Identical(want.Maps, maps, "span maps");
            var only = new float[2];
            m.Predict(new ReadOnlySpan<byte>(both), 2, rgb, only, Span<float>.Empty);
            Identical(want.Scores, only, "span scores without maps");
            Status(PatchCoreStatus.InvalidArgument, () => m.Predict(new ReadOnlySpan<byte>(both, 0, 1000), 2, rgb, new float[2], Span<float>.Empty));

            float t = m.CalibrateScores(new ReadOnlySpan<float>(want.Scores), ReadOnlySpan<int>.Empty, CalibrationMethod.Quantile, 1.0);
            Equal(want.Scores.Max(), t, "span calibrate");
            var masks = new byte[maps.Length];
            m.Segment(new ReadOnlySpan<float>(maps), masks);
            Identical(m.Segment(maps).Select(x => (float)x).ToArray(), masks.Select(x => (float)x).ToArray(), "span segment");
            var norm = new float[2];
            m.NormalizeScores(new ReadOnlySpan<float>(want.Scores), norm);
            Identical(m.NormalizeScores(want.Scores), norm, "span normalize");

            byte[] saved = m.SaveToBytes();
            // The model names its backbone file; a buffer has no folder to find it in.
            string onnx = Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx");
            using (PatchCoreModel b = PatchCoreModel.LoadFromBytes(new ReadOnlySpan<byte>(saved), onnx))
            {
                Identical(want.Scores, b.Predict(both, 0, 2, rgb, false).Scores, "span load");
            }
        }
        var rnd = new Random(9);
        float[] bank = RandomFloats(rnd, 50 * 4), q = RandomFloats(rnd, 5 * 4);
        using (var s = new NearestNeighbourScorer(2))
        {
            s.Fit(new ReadOnlySpan<float>(bank), 50, 4);
            float[] want = s.Predict(q, 5, 4, out float[] wd, out long[] wi);
            var sc = new float[5];
            var d = new float[10];
            var i = new long[10];
            s.Predict(new ReadOnlySpan<float>(q), 5, 4, sc, d, i);
            Identical(want, sc, "span scorer scores");
            Identical(wd, d, "span scorer distances");
            True(wi.SequenceEqual(i), "span scorer indices");
        }
        using (var seg = new RescaleSegmentor(16, 16))
        {
            float[] patch = RandomFloats(rnd, 2 * 4 * 4);
            var o = new float[2 * 16 * 16];
            seg.ConvertToSegmentation(new ReadOnlySpan<float>(patch), 2, 4, 4, o);
            Identical(seg.ConvertToSegmentation(patch, 2, 4, 4), o, "span segmentor");
        }
    }
#endif

    // ----------------------------------------------------------------- fixtures

    private static PatchCoreModel NewMnv2Model()
    {
        return new PatchCoreModel(new PatchCoreConfig
        {
            BackbonePath = Golden("mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"),
            Layers = Mnv2Layers,
            Mean = new[] { 0.5f, 0.5f, 0.5f },
            Std = new[] { 0.5f, 0.5f, 0.5f },
            Sampler = Samplers.Identity,
            NumThreads = 2,
        });
    }

    private static PatchCoreModel NewFeaturesModel(string[] layers, int pretrainDim, int targetDim, int k = 1)
    {
        return new PatchCoreModel(new PatchCoreConfig
        {
            Layers = layers,
            Sampler = Samplers.Identity,
            PretrainEmbedDimension = pretrainDim,
            TargetEmbedDimension = targetDim,
            NumNearestNeighbours = k,
            NumThreads = 2,
        });
    }

    private static FeatureMap[] GoldenFeatures(string split)
    {
        return new[]
        {
            new FeatureMap(Npy.Read(Golden("mnv2/block6_" + split + ".npy")).F32, 2, 192, 28, 28),
            new FeatureMap(Npy.Read(Golden("mnv2/block10_" + split + ".npy")).F32, 2, 384, 14, 14),
        };
    }

    private static string[] TrainFiles()
    {
        return new[] { Golden("mnv2/png/train_good_000.png"), Golden("mnv2/png/train_good_001.png") };
    }

    private static string[] TestFiles()
    {
        return new[] { Golden("mnv2/png/test_good_001.png"), Golden("mnv2/png/test_stain_000.png") };
    }

    private static string Golden(string rel)
    {
        return Path.Combine(golden, rel);
    }

    private static string FindGolden()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppDomain.CurrentDomain.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string g = Path.Combine(d.FullName, "testdata", "golden");
                if (File.Exists(Path.Combine(g, "mnv2", "image_scores_k1.npy")))
                {
                    return g;
                }
            }
        }
        throw new Exception("testdata/golden not found: pass --golden DIR or set PATCHCORE_GOLDEN");
    }

    // ----------------------------------------------------------------- oracles and helpers

    /// <summary>The k smallest squared L2 distances from queries row q to the bank rows, ascending (float64).</summary>
    private static double[] BruteForce(float[] bank, int d, float[] queries, int q, int k, out long[] indices)
    {
        int n = bank.Length / d;
        var all = new KeyValuePair<double, long>[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < d; j++)
            {
                double diff = (double)queries[q * d + j] - bank[i * d + j];
                s += diff * diff;
            }
            all[i] = new KeyValuePair<double, long>(s, i);
        }
        var best = all.OrderBy(x => x.Key).ThenBy(x => x.Value).Take(k).ToArray();
        indices = best.Select(x => x.Value).ToArray();
        return best.Select(x => x.Key).ToArray();
    }

    /// <summary>numpy.quantile with linear interpolation.</summary>
    private static double Quantile(float[] values, double q)
    {
        double[] s = values.Select(x => (double)x).OrderBy(x => x).ToArray();
        double pos = q * (s.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, s.Length - 1);
        return s[lo] + (pos - lo) * (s[hi] - s[lo]);
    }

    private static long WorkingSet()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        using (Process p = Process.GetCurrentProcess())
        {
            p.Refresh();
            return p.WorkingSet64;
        }
    }

    private static void RunThreads(int n, Action<int> body)
    {
        var errors = new Exception[n];
        var threads = new Thread[n];
        using (var start = new ManualResetEvent(false))
        {
            for (int t = 0; t < n; t++)
            {
                int id = t;
                threads[t] = new Thread(() =>
                {
                    start.WaitOne();
                    try
                    {
                        body(id);
                    }
                    catch (Exception e)
                    {
                        errors[id] = e;
                    }
                });
                threads[t].Start();
            }
            start.Set();
            foreach (Thread th in threads)
            {
                th.Join();
            }
        }
        foreach (Exception e in errors)
        {
            if (e != null)
            {
                throw new Exception("a thread failed", e);
            }
        }
    }

    private static float[] RandomFloats(Random rnd, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = (float)rnd.NextDouble();
        }
        return a;
    }

    private static T[] Concat<T>(params T[][] parts)
    {
        return parts.SelectMany(p => p).ToArray();
    }

    private static byte[] ToBgra(byte[] rgb, int w, int h, int stride)
    {
        var o = new byte[h * stride];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                int s = (y * w + x) * 3, d = y * stride + x * 4;
                o[d] = rgb[s + 2];
                o[d + 1] = rgb[s + 1];
                o[d + 2] = rgb[s];
                o[d + 3] = 77; // alpha is ignored
            }
            for (int x = w * 4; x < stride; x++)
            {
                o[y * stride + x] = 0xEE; // padding is never read
            }
        }
        return o;
    }

    private static byte[] ToGray(byte[] rgb)
    {
        var g = new byte[rgb.Length / 3];
        for (int i = 0; i < g.Length; i++)
        {
            g[i] = (byte)((rgb[3 * i] + 2 * rgb[3 * i + 1] + rgb[3 * i + 2]) / 4);
        }
        return g;
    }

    // ----------------------------------------------------------------- assertions

    private static void True(bool condition, string what)
    {
        if (!condition)
        {
            throw new Exception("assertion failed: " + what);
        }
    }

    private static void Null(object value, string what)
    {
        True(value == null, what + " is null");
    }

    private static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
        {
            throw new Exception(string.Format("{0}: expected {1}, got {2}", what, expected, actual));
        }
    }

    /// <summary>max|actual - expected| &lt;= tol * max|expected| (the golden README's rule).</summary>
    private static void Close(float[] expected, float[] actual, double tol, string what)
    {
        True(actual != null, what + ": result is null");
        Equal(expected.Length, actual.Length, what + ": length");
        double scale = 0, worst = 0;
        int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (!(d <= worst))
            {
                worst = d;
                at = i;
            }
        }
        if (!(worst <= tol * Math.Max(scale, 1e-30)))
        {
            throw new Exception(string.Format("{0}: max |diff| {1:G6} at {2} (expected {3}, got {4}) exceeds {5} x {6:G6}",
                what, worst, at, expected[at], actual[at], tol, scale));
        }
    }

    private static void Identical(float[] expected, float[] actual, string what)
    {
        Close(expected, actual, 0, what);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.ToInt32(BitConverter.GetBytes(expected[i]), 0) != BitConverter.ToInt32(BitConverter.GetBytes(actual[i]), 0))
            {
                throw new Exception(what + ": element " + i + " differs in its bits");
            }
        }
    }

    private static T Throws<T>(Action action) where T : Exception
    {
        try
        {
            action();
        }
        catch (T e)
        {
            return e;
        }
        catch (Exception e)
        {
            throw new Exception("expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message, e);
        }
        throw new Exception("expected " + typeof(T).Name + ", nothing was thrown");
    }

    private static T Throws<T>(Func<object> action) where T : Exception
    {
        return Throws<T>(() => { action(); });
    }

    private static PatchCoreException Status(PatchCoreStatus status, Action action)
    {
        PatchCoreException e = Throws<PatchCoreException>(action);
        if (e.Status != status)
        {
            throw new Exception("expected status " + status + ", got " + e.Status + ": " + e.Message, e);
        }
        if (string.IsNullOrEmpty(e.NativeMessage))
        {
            throw new Exception("status " + status + " came without a message");
        }
        return e;
    }

    private static PatchCoreException Status(PatchCoreStatus status, Func<object> action)
    {
        return Status(status, () => { action(); });
    }
}

/// <summary>A .npy reader for little-endian float32 and int64 arrays in C order.</summary>
internal sealed class Npy
{
    public float[] F32;
    public long[] I64;
    public int[] Shape;

    public static Npy Read(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        if (b.Length < 10 || b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY")
        {
            throw new InvalidDataException(path + ": not a .npy file");
        }
        int major = b[6];
        int headerLen = major == 1 ? BitConverter.ToUInt16(b, 8) : BitConverter.ToInt32(b, 8);
        int start = major == 1 ? 10 : 12;
        string header = Encoding.ASCII.GetString(b, start, headerLen);
        int dataAt = start + headerLen;
        if (header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException(path + ": Fortran order");
        }
        string shape = header.Substring(header.IndexOf("'shape': (") + 10);
        shape = shape.Substring(0, shape.IndexOf(')'));
        var npy = new Npy
        {
            Shape = shape.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s.Trim())).ToArray(),
        };
        int count = npy.Shape.Aggregate(1, (a, x) => a * x);
        if (header.Contains("'<f4'"))
        {
            npy.F32 = new float[count];
            Buffer.BlockCopy(b, dataAt, npy.F32, 0, count * 4);
        }
        else if (header.Contains("'<i8'"))
        {
            npy.I64 = new long[count];
            Buffer.BlockCopy(b, dataAt, npy.I64, 0, count * 8);
        }
        else
        {
            throw new InvalidDataException(path + ": unsupported dtype in " + header);
        }
        return npy;
    }
}

/// <summary>A PNG decoder for 8-bit gray, RGB and RGBA non-interlaced images: enough for the golden images.</summary>
internal sealed class Png
{
    public int Width;
    public int Height;
    public int Channels;
    public byte[] Pixels; // packed rows, Width * Channels bytes each

    public static Png Read(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        var png = new Png();
        var idat = new MemoryStream();
        int pos = 8;
        while (pos + 8 <= b.Length)
        {
            int len = (b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3];
            string type = Encoding.ASCII.GetString(b, pos + 4, 4);
            int data = pos + 8;
            if (type == "IHDR")
            {
                png.Width = (b[data] << 24) | (b[data + 1] << 16) | (b[data + 2] << 8) | b[data + 3];
                png.Height = (b[data + 4] << 24) | (b[data + 5] << 16) | (b[data + 6] << 8) | b[data + 7];
                int depth = b[data + 8], color = b[data + 9], interlace = b[data + 12];
                png.Channels = color == 0 ? 1 : color == 2 ? 3 : color == 6 ? 4 : 0;
                if (depth != 8 || png.Channels == 0 || interlace != 0)
                {
                    throw new InvalidDataException(path + ": unsupported PNG (depth " + depth + ", colour " + color + ")");
                }
            }
            else if (type == "IDAT")
            {
                idat.Write(b, data, len);
            }
            else if (type == "IEND")
            {
                break;
            }
            pos = data + len + 4;
        }
        int rowBytes = png.Width * png.Channels;
        var raw = new byte[png.Height * (rowBytes + 1)];
        idat.Position = 2; // zlib header
        using (var z = new DeflateStream(idat, CompressionMode.Decompress))
        {
            int got = 0;
            while (got < raw.Length)
            {
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0)
                {
                    throw new InvalidDataException(path + ": truncated image data");
                }
                got += n;
            }
        }
        png.Pixels = new byte[png.Height * rowBytes];
        int bpp = png.Channels;
        for (int y = 0; y < png.Height; y++)
        {
            int filter = raw[y * (rowBytes + 1)];
            int src = y * (rowBytes + 1) + 1, dst = y * rowBytes, prev = dst - rowBytes;
            for (int x = 0; x < rowBytes; x++)
            {
                int a = x >= bpp ? png.Pixels[dst + x - bpp] : 0;
                int up = y > 0 ? png.Pixels[prev + x] : 0;
                int c = x >= bpp && y > 0 ? png.Pixels[prev + x - bpp] : 0;
                int v = raw[src + x];
                switch (filter)
                {
                    case 0: break;
                    case 1: v += a; break;
                    case 2: v += up; break;
                    case 3: v += (a + up) / 2; break;
                    case 4: v += Paeth(a, up, c); break;
                    default: throw new InvalidDataException(path + ": bad filter " + filter);
                }
                png.Pixels[dst + x] = (byte)v;
            }
        }
        return png;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
