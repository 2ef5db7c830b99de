// Fits a PatchCore model on the good images of a folder, scores test images and writes each
// anomaly map as a colour heat map (binary PPM, written by hand: no imaging library needed).
//
// Usage:
//   PatchCoreExample.exe --backbone MODEL.onnx --layers LAYER1,LAYER2 [--mean R,G,B --std R,G,B]
//                        [--sampler NAME] [--out DIR] TRAIN_FOLDER TEST_IMAGE...
// Example (the MobileNetV2 test backbone, which takes pixels scaled to [-1, 1]):
//   mono PatchCoreExample.exe --backbone nsfwjs_mnv2_block6er_block10er_pm1.onnx \
//     --layers block_6_expand_relu,block_10_expand_relu --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 \
//     good/ test/stain_000.png
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using PatchCore;

internal static class Program
{
    private static int Main(string[] args)
    {
        var config = new PatchCoreConfig();
        string outDir = ".";
        var positional = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--backbone": config.BackbonePath = value; i++; break;
                case "--layers": config.Layers = value.Split(','); i++; break;
                case "--mean": config.Mean = Floats(value); i++; break;
                case "--std": config.Std = Floats(value); i++; break;
                case "--sampler": config.Sampler = value; i++; break;
                case "--out": outDir = value; i++; break;
                default: positional.Add(args[i]); break;
            }
        }
        if (config.BackbonePath == null || config.Layers == null || positional.Count < 2)
        {
            Console.Error.WriteLine("usage: PatchCoreExample.exe --backbone MODEL.onnx --layers L1,L2 [--mean R,G,B --std R,G,B] " +
                "[--sampler NAME] [--out DIR] TRAIN_FOLDER TEST_IMAGE...");
            return 2;
        }

        try
        {
            string[] train = Directory.GetFiles(positional[0])
                .Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) ||
                            f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) ||
                            f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase))
                .OrderBy(f => f, StringComparer.Ordinal)
                .ToArray();
            string[] test = positional.Skip(1).ToArray();
            Console.WriteLine("libpatchcore {0}: fitting on {1} images from {2}", PatchCoreLibrary.VersionString, train.Length, positional[0]);

            using (var model = new PatchCoreModel(config))
            {
                model.AddFiles(train);
                model.Fit();
                Console.WriteLine("memory bank: {0} patches, grid {1}x{2}", model.MemoryBankRows, model.GridHeight, model.GridWidth);

                PatchCoreResult result = model.PredictFiles(test);
                // One colour scale for every map, so that the heat maps compare with each other.
                float lo = result.Maps.Min(), hi = result.Maps.Max();
                Directory.CreateDirectory(outDir);
                for (int i = 0; i < test.Length; i++)
                {
                    float[] map = result.GetMap(i);
                    int peak = Array.IndexOf(map, map.Max());
                    string ppm = Path.Combine(outDir, Path.GetFileNameWithoutExtension(test[i]) + "_heatmap.ppm");
                    WriteHeatMap(ppm, map, result.MapWidth, result.MapHeight, lo, hi);
                    Console.WriteLine("{0}: score {1:F4}, peak at ({2}, {3}) -> {4}", test[i], result.Scores[i],
                        peak % result.MapWidth, peak / result.MapWidth, ppm);
                }
            }
            return 0;
        }
        catch (PatchCoreException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 1;
        }
    }

    private static float[] Floats(string csv)
    {
        return csv.Split(',').Select(s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>Writes map (row-major, width x height) as a binary PPM, lo..hi mapped blue -> green -> red.</summary>
    private static void WriteHeatMap(string path, float[] map, int width, int height, float lo, float hi)
    {
        using (var f = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            byte[] header = System.Text.Encoding.ASCII.GetBytes("P6\n" + width + " " + height + "\n255\n");
            f.Write(header, 0, header.Length);
            var rgb = new byte[3 * width * height];
            float range = hi > lo ? hi - lo : 1;
            for (int i = 0; i < map.Length; i++)
            {
                double t = Math.Max(0, Math.Min(1, (map[i] - lo) / range));
                // A "jet"-like ramp: blue (0) -> cyan -> green (0.5) -> yellow -> red (1).
                rgb[3 * i] = Channel(1.5 - Math.Abs(4 * t - 3));
                rgb[3 * i + 1] = Channel(1.5 - Math.Abs(4 * t - 2));
                rgb[3 * i + 2] = Channel(1.5 - Math.Abs(4 * t - 1));
            }
            f.Write(rgb, 0, rgb.Length);
        }
    }

    private static byte Channel(double v)
    {
        return (byte)Math.Round(255 * Math.Max(0, Math.Min(1, v)));
    }
}
