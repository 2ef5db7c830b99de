package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/coreset"
	"github.com/libpatchcore/libpatchcore/internal/coreset/cblas"
	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

// The reference's approximate greedy coreset works on features projected to 128
// dimensions, with the mean distance to 10 random start points as initial score.
const (
	projectionDim = 128
	startPoints   = 10
)

// stageFLOPs is the analytic work of each stage (see flops.go): per image for the
// backbone, embedding, search and segmentation, per fit for the coreset.
type stageFLOPs struct {
	Backbone       float64  `json:"backbone"`
	BackboneConvs  int      `json:"backbone_convs"`
	Uncounted      []string `json:"backbone_uncounted,omitempty"`
	Embed          float64  `json:"embed"`
	Projection     float64  `json:"coreset_projection"`
	GreedyPlain    float64  `json:"coreset_greedy_plain"`
	Search         float64  `json:"search_exact"`
	SearchIVF      float64  `json:"search_ivfpq"`
	Segment        float64  `json:"segment"`
	BackboneErrMsg string   `json:"backbone_error,omitempty"`
}

// stagesResult times every stage apart, from the library's building blocks.
type stagesResult struct {
	Kind        string   `json:"kind"` // "stages"
	Label       string   `json:"label,omitempty"`
	Machine     machine  `json:"machine"`
	Backbone    string   `json:"backbone"`
	BackboneSHA string   `json:"backbone_sha256"`
	Layers      []string `json:"layers"`
	LayerShapes [][3]int `json:"layer_shapes"`
	Images      int      `json:"images"`
	Distinct    int      `json:"distinct_images"`
	Percentage  float64  `json:"percentage"`
	Rows        int      `json:"rows"`
	Dim         int      `json:"dim"`
	Grid        [2]int   `json:"grid"`
	BankRows    int      `json:"bank_rows"`

	// Fit, in batches of 8 (ms per image) and per fit (s).
	PreprocessMs float64 `json:"fit_preprocess_ms"` // decode + resize/crop/normalise
	BackboneMs   float64 `json:"fit_backbone_ms"`
	EmbedMs      float64 `json:"fit_embed_ms"`
	CoresetS     float64 `json:"coreset_s"`
	CoresetCPU   float64 `json:"coreset_cpu_s"` // CPU time of the coreset, all threads
	ProjectionS  float64 `json:"coreset_projection_s"`
	IndexS       float64 `json:"index_exact_s"`
	IVFTrainS    float64 `json:"index_ivfpq_s,omitempty"`

	// Coreset loop alone on the projected features: pruned kernel vs the plain loop.
	GreedyFastS  float64 `json:"greedy_fast_s,omitempty"`
	GreedyPlainS float64 `json:"greedy_plain_s,omitempty"`
	GreedyFastC  float64 `json:"greedy_fast_cpu_s,omitempty"`
	GreedyPlainC float64 `json:"greedy_plain_cpu_s,omitempty"`
	GreedySame   bool    `json:"greedy_same,omitempty"`

	// Test set, one image at a time (ms per image).
	TestImages   int     `json:"test_images"`
	PreprocessB1 float64 `json:"b1_preprocess_ms"` // resize/crop/normalise of a decoded image
	BackboneB1   float64 `json:"b1_backbone_ms"`
	EmbedB1      float64 `json:"b1_embed_ms"`
	SearchMs     float64 `json:"b1_search_exact_ms"`
	SearchIVFMs  float64 `json:"b1_search_ivfpq_ms,omitempty"`
	SegmentMs    float64 `json:"b1_segment_ms"`
	RecallIVF    float64 `json:"ivfpq_recall_at_1,omitempty"`
	AUROCExact   float64 `json:"image_auroc_exact,omitempty"`
	AUROCIVF     float64 `json:"image_auroc_ivfpq,omitempty"`
	IVFNote      string  `json:"ivfpq_note,omitempty"`

	FLOPs      stageFLOPs `json:"flops"`
	PeakRSSMiB float64    `json:"peak_rss_mib"`
	Runs       int        `json:"-"` // measurements merged into this one by the report
}

func runStages(args []string) error {
	fs := flag.NewFlagSet("stages", flag.ExitOnError)
	var f setupFlags
	f.declare(fs)
	plain := fs.Bool("coreset-plain", false, "also time the plain greedy loop (single-threaded, O(N·k)) against the pruned one")
	maxTest := fs.Int("max-test", 48, "at most this many test images are scored")
	fs.Parse(args)
	s, err := f.parse()
	if err != nil {
		return err
	}
	threads := runtime.GOMAXPROCS(0)
	r := stagesResult{Kind: "stages", Label: s.label, Machine: newMachine(), Backbone: s.backbone, BackboneSHA: s.sha,
		Layers: s.layers, Images: len(s.train), Distinct: s.distinct, Percentage: s.pct}
	cfg := s.config("exact")
	agg, err := core.NewNetworkFeatureAggregator(cfg.Backbone, s.layers, "cpu", core.BackboneOptions{Threads: threads})
	if err != nil {
		return err
	}
	defer agg.Close()
	if r.LayerShapes, err = agg.FeatureShapes(3, s.imageSize, s.imageSize); err != nil {
		return err
	}
	tr := core.ImageTransform{Resize: s.resize, CropSize: s.imageSize, Mean: s.mean, Std: s.std}
	ecfg := core.EmbedConfig{PatchSize: cfg.PatchSize, Stride: 1, PretrainEmbedDim: cfg.PretrainEmbedDim, TargetEmbedDim: cfg.TargetEmbedDim}
	r.Dim = ecfg.TargetEmbedDim

	// Fit: preprocessing, backbone and embedding per batch of the model's size (8).
	per, fitBatch := tr.TensorSize(), cfg.BatchSize
	buf := make([]float32, fitBatch*per)
	var feats []float32
	var tPre, tBB, tEmb time.Duration
	for start := 0; start < len(s.train); start += fitBatch {
		b := min(fitBatch, len(s.train)-start)
		t := time.Now()
		for j := 0; j < b; j++ {
			img, err := core.LoadImage(s.train[start+j])
			if err != nil {
				return err
			}
			if err := tr.Apply(img, buf[j*per:(j+1)*per]); err != nil {
				return err
			}
		}
		tPre += time.Since(t)
		batch, err := core.TensorFrom(buf[:b*per], b, 3, s.imageSize, s.imageSize)
		if err != nil {
			return err
		}
		t = time.Now()
		layers, err := agg.ForwardOrdered(batch)
		if err != nil {
			return err
		}
		tBB += time.Since(t)
		t = time.Now()
		emb, gh, gw, err := core.Embed(layers, ecfg, nil)
		if err != nil {
			return err
		}
		tEmb += time.Since(t)
		r.Grid = [2]int{gh, gw}
		feats = append(feats, emb.Data...)
	}
	n := float64(len(s.train))
	r.PreprocessMs, r.BackboneMs, r.EmbedMs = ms(tPre)/n, ms(tBB)/n, ms(tEmb)/n
	r.Rows = len(feats) / r.Dim
	fmt.Fprintf(os.Stderr, "pcbench stages: %d images: preprocess %.1f, backbone %.1f, embed %.1f ms/image\n",
		len(s.train), r.PreprocessMs, r.BackboneMs, r.EmbedMs)

	// Coreset.
	all, err := core.TensorFrom(feats, r.Rows, r.Dim)
	if err != nil {
		return err
	}
	sampler, err := core.SamplerByName(cfg.Sampler, s.pct, s.seed)
	if err != nil {
		return err
	}
	t, cpu := time.Now(), cpuSeconds()
	bank, _, err := sampler.Sample(all)
	if err != nil {
		return err
	}
	r.CoresetS, r.CoresetCPU = time.Since(t).Seconds(), cpuSeconds()-cpu
	r.BankRows = bank.Shape[0]
	projected := timeProjection(all, &r)
	fmt.Fprintf(os.Stderr, "pcbench stages: coreset %d -> %d rows in %.2fs (projection %.2fs)\n", r.Rows, r.BankRows, r.CoresetS, r.ProjectionS)
	if *plain {
		timeGreedy(projected, r.Rows, r.BankRows, s.seed, &r)
		fmt.Fprintf(os.Stderr, "pcbench stages: greedy loop fast %.2fs, plain %.2fs, same picks %v\n", r.GreedyFastS, r.GreedyPlainS, r.GreedySame)
	}

	// Indexes.
	exact, err := newScorer("exact", bank, threads, &r.IndexS)
	if err != nil {
		return err
	}
	defer exact.Close()
	var ivf *core.NearestNeighbourScorer
	if r.BankRows < 512 {
		r.IVFNote = fmt.Sprintf("IVF512,PQ64 needs at least 512 bank rows, the bank has %d", r.BankRows)
	} else {
		if ivf, err = newScorer("ivfpq", bank, threads, &r.IVFTrainS); err != nil {
			return err
		}
		defer ivf.Close()
	}

	if err := scoreTestSet(s, *maxTest, agg, tr, ecfg, exact, ivf, &r); err != nil {
		return err
	}
	r.FLOPs = countStages(s, &r, threads)
	r.PeakRSSMiB = peakRSSMiB()
	r.Machine.LoadAfter = loadAvg()
	return emit(s.out, r)
}

// timeProjection times the coreset's random projection (one SGEMM, rows × D times
// D × 128, as the sampler does it) and returns the projected rows.
func timeProjection(all core.Tensor, r *stagesResult) []float32 {
	n, d := all.Shape[0], all.Shape[1]
	if d == projectionDim {
		return all.Data
	}
	rng := rand.New(rand.NewPCG(3, 4))
	proj := make([]float32, d*projectionDim)
	for i := range proj {
		proj[i] = (2*rng.Float32() - 1) / 32
	}
	out := make([]float32, n*projectionDim)
	t := time.Now()
	cblas.Project(all.Data, n, d, proj, projectionDim, out)
	r.ProjectionS = time.Since(t).Seconds()
	return out
}

// timeGreedy runs the greedy loop on the projected rows with the pruned kernel and with the
// plain loop from the same start points, and checks they pick the same rows.
func timeGreedy(rows []float32, n, k int, seed uint64, r *stagesResult) {
	pts := coreset.NewPoints(rows, n, projectionDim, 0)
	rng := rand.New(rand.NewPCG(seed, 5))
	starts := rng.Perm(n)[:min(startPoints, n)]
	init := pts.MeanDistances(starts)
	t, cpu := time.Now(), cpuSeconds()
	fast := pts.GreedyFast(init, k)
	r.GreedyFastS, r.GreedyFastC = time.Since(t).Seconds(), cpuSeconds()-cpu
	t, cpu = time.Now(), cpuSeconds()
	plain := pts.GreedyPlain(init, k)
	r.GreedyPlainS, r.GreedyPlainC = time.Since(t).Seconds(), cpuSeconds()-cpu
	r.GreedySame = slices.Equal(fast, plain)
}

// newScorer builds and fits a k=1 scorer of the given kind on the bank, timing the fit.
func newScorer(kind string, bank core.Tensor, threads int, took *float64) (*core.NearestNeighbourScorer, error) {
	var nn core.NNMethod
	var err error
	if kind == "ivfpq" {
		nn, err = core.NewApproximateFaissNN(false, threads)
	} else {
		nn, err = core.NewFaissNN(false, threads)
	}
	if err != nil {
		return nil, err
	}
	sc, err := core.NewNearestNeighbourScorer(1, nn)
	if err != nil {
		nn.Close()
		return nil, err
	}
	t := time.Now()
	if err := sc.Fit([]core.Tensor{bank}); err != nil {
		nn.Close()
		return nil, err
	}
	*took = time.Since(t).Seconds()
	return sc, nil
}

// scoreTestSet runs the test images one at a time through every stage, timing each, and
// compares IVF-PQ with exact search (recall@1 of the exact nearest neighbour, image AUROC).
func scoreTestSet(s *setup, maxTest int, agg *core.NetworkFeatureAggregator, tr core.ImageTransform, ecfg core.EmbedConfig,
	exact, ivf *core.NearestNeighbourScorer, r *stagesResult) error {
	paths, labels := s.testSet(maxTest)
	imgs, err := loadImages(paths)
	if err != nil {
		return err
	}
	r.TestImages = len(imgs)
	seg := core.RescaleSegmentor{TargetH: s.imageSize, TargetW: s.imageSize, Sigma: core.DefaultSegmentationSigma}
	x := core.NewTensor(1, 3, s.imageSize, s.imageSize)
	var tPre, tBB, tEmb, tSearch, tIVF, tSeg time.Duration
	var hits, queries int
	scores, scoresIVF := make([]float32, len(imgs)), make([]float32, len(imgs))
	for i := -1; i < len(imgs); i++ { // i = -1: warm-up on the first image, not timed
		img := imgs[max(i, 0)]
		t0 := time.Now()
		if err := tr.Apply(img, x.Data); err != nil {
			return err
		}
		t1 := time.Now()
		layers, err := agg.ForwardOrdered(x)
		if err != nil {
			return err
		}
		t2 := time.Now()
		emb, gh, gw, err := core.Embed(layers, ecfg, nil)
		if err != nil {
			return err
		}
		t3 := time.Now()
		ps, _, idx, err := exact.Predict([]core.Tensor{emb})
		if err != nil {
			return err
		}
		t4 := time.Now()
		patch, err := core.TensorFrom(ps, 1, gh, gw)
		if err != nil {
			return err
		}
		if _, err := seg.ConvertToSegmentation(patch); err != nil {
			return err
		}
		t5 := time.Now()
		var psIVF []float32
		var idxIVF []int64
		if ivf != nil {
			if psIVF, _, idxIVF, err = ivf.Predict([]core.Tensor{emb}); err != nil {
				return err
			}
		}
		t6 := time.Now()
		if i < 0 {
			continue
		}
		tPre += t1.Sub(t0)
		tBB += t2.Sub(t1)
		tEmb += t3.Sub(t2)
		tSearch += t4.Sub(t3)
		tSeg += t5.Sub(t4)
		tIVF += t6.Sub(t5)
		scores[i] = slices.Max(ps)
		if ivf != nil {
			scoresIVF[i] = slices.Max(psIVF)
			for q := range idx {
				if idx[q] == idxIVF[q] {
					hits++
				}
			}
			queries += len(idx)
		}
	}
	n := float64(len(imgs))
	r.PreprocessB1, r.BackboneB1, r.EmbedB1 = ms(tPre)/n, ms(tBB)/n, ms(tEmb)/n
	r.SearchMs, r.SegmentMs = ms(tSearch)/n, ms(tSeg)/n
	if ivf != nil {
		r.SearchIVFMs = ms(tIVF) / n
		r.RecallIVF = float64(hits) / float64(queries)
	}
	if labels == nil {
		return nil
	}
	if r.AUROCExact, err = metrics.AUROC(scores, labels); err != nil {
		return err
	}
	if ivf != nil {
		if r.AUROCIVF, err = metrics.AUROC(scoresIVF, labels); err != nil {
			return err
		}
	}
	return nil
}

// countStages fills in the analytic work of every stage.
func countStages(s *setup, r *stagesResult, threads int) stageFLOPs {
	var f stageFLOPs
	if bw, err := countBackbone(s.backbone, s.layers, s.imageSize, threads); err != nil {
		f.BackboneErrMsg = err.Error()
	} else {
		f.Backbone, f.BackboneConvs, f.Uncounted = bw.FLOPs, bw.Convs, bw.Uncounted
	}
	f.Embed = embedFLOPs(r.LayerShapes, 3, r.Dim, r.Dim)
	f.Projection, f.GreedyPlain = coresetFLOPs(r.Rows, r.Dim, projectionDim, min(startPoints, r.Rows), r.BankRows)
	q := r.Grid[0] * r.Grid[1]
	f.Search = searchFLOPs(q, r.BankRows, r.Dim)
	if r.IVFNote == "" {
		f.SearchIVF = ivfpqSearchFLOPs(q, r.BankRows, r.Dim)
	}
	f.Segment = segmentFLOPs(r.Grid[0], r.Grid[1], s.imageSize, core.DefaultSegmentationSigma)
	return f
}
