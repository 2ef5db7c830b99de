package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The reference implementation's figures on this machine (PyTorch + FAISS, WideResNet50
// at 224, 60 training images, approximate greedy coreset 10 %), as quoted in issue 8.
var reference = struct {
	embedS, coresetS, predictS [2]float64
	rssGiB                     float64
}{embedS: [2]float64{15, 23}, coresetS: [2]float64{28, 31}, predictS: [2]float64{0.23, 0.41}, rssGiB: 1.3}

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "", "JSON lines written by ceiling, fit and stages (default: stdin)")
	fs.Parse(args)
	var src io.Reader = os.Stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	var ceil *ceilingResult
	var fits []fitResult
	var stages []stagesResult
	var anoms []anomalibResult
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		var kind struct {
			Kind string `json:"kind"`
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := json.Unmarshal(line, &kind); err != nil {
			return err
		}
		var err error
		switch kind.Kind {
		case "ceiling": // the highest of several measurements: load on the machine only lowers it
			var r ceilingResult
			if err = json.Unmarshal(line, &r); err == nil && (ceil == nil || r.GFLOPS > ceil.GFLOPS) {
				ceil = &r
			}
		case "fit":
			var r fitResult
			err = json.Unmarshal(line, &r)
			fits = append(fits, r)
		case "stages":
			var r stagesResult
			err = json.Unmarshal(line, &r)
			stages = append(stages, r)
		case "anomalib":
			var r anomalibResult
			err = json.Unmarshal(line, &r)
			anoms = append(anoms, r)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	writeReport(os.Stdout, ceil, mergeFits(fits), mergeStages(stages))
	writeAnomalib(os.Stdout, anoms)
	return nil
}

// anomalibResult is a line of bench/anomalib/patchcore_anomalib.py.
type anomalibResult struct {
	Anomalib     string     `json:"anomalib"`
	Torch        string     `json:"torch"`
	Threads      int        `json:"threads"`
	Date         string     `json:"date"`
	LoadBefore   [3]float64 `json:"load_before"`
	LoadAfter    [3]float64 `json:"load_after"`
	Images       int        `json:"images"`
	Distinct     int        `json:"distinct_images"`
	Percentage   float64    `json:"percentage"`
	Rows         int        `json:"rows"`
	Dim          int        `json:"dim"`
	BankRows     int        `json:"bank_rows"`
	PreprocessMs float64    `json:"preprocess_ms"`
	BackboneMs   float64    `json:"backbone_ms"`
	EmbedMs      float64    `json:"embed_ms"`
	CoresetS     float64    `json:"coreset_s"`
	FitS         float64    `json:"fit_s"`
	FitRSSMiB    float64    `json:"fit_peak_rss_mib"`
	PeakRSSMiB   float64    `json:"peak_rss_mib"`
	Batch1MedMs  float64    `json:"predict_b1_median_ms"`
	Batch8MsImg  float64    `json:"predict_b8_ms_per_image"`
	AUROC        *float64   `json:"image_auroc"`
}

// writeAnomalib prints anomalib's PatchCore figures.
func writeAnomalib(w io.Writer, rs []anomalibResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "anomalib's PatchCore (torch model without the Lightning trainer; WideResNet50 random init, layer2+layer3 → 1536-d, batch 8):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| anomalib / torch | images | bank | preprocess ms/img | backbone ms/img | embedding ms/img | coreset s | fit s | peak RSS MiB (fit / end) | predict b1 median ms | predict b8 ms/image | image AUROC | load 1m |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		a := 0.0
		if r.AUROC != nil {
			a = *r.AUROC
		}
		fmt.Fprintf(w, "| %s / %s (%d threads) | %s | %.0f%% = %d×%d | %.2f | %.1f | %.2f | %.2f | %.2f | %.0f / %.0f | %.1f | %.1f | %s | %.2f→%.2f |\n",
			r.Anomalib, r.Torch, r.Threads, images(r.Images, r.Distinct), 100*r.Percentage, r.BankRows, r.Dim, r.PreprocessMs,
			r.BackboneMs, r.EmbedMs, r.CoresetS, r.FitS, r.FitRSSMiB, r.PeakRSSMiB, r.Batch1MedMs, r.Batch8MsImg, auroc(a),
			r.LoadBefore[0], r.LoadAfter[0])
	}
	fmt.Fprintln(w)
}

// writeReport prints the markdown tables of docs/benchmarks.md.
func writeReport(w io.Writer, ceil *ceilingResult, fits []fitResult, stages []stagesResult) {
	peak := 0.0
	if ceil != nil {
		peak = ceil.GFLOPS
		fmt.Fprintf(w, "Ceiling: SGEMM %d³ through OpenBLAS (%s kernels), best of %d: **%.0f GFLOP/s** on %d threads, %.0f GFLOP/s on 1 (load %s, %s).\n\n",
			ceil.N, ceil.BLASCore, ceil.Reps, ceil.GFLOPS, ceil.Threads, ceil.GFLOPS1, load(ceil.Machine), ceil.Machine.Date)
	}
	fmt.Fprintln(w, "Repeated runs of a configuration are merged into their best (other load on the machine only slows a run down): the lowest time of each figure, the highest throughput and peak RSS; \"runs\" gives their number and the range of 1-minute load averages seen. CPU s is the process's user + system time (all threads) for the step: next to the wall time it shows how much of the 2 cores the step got.")
	fmt.Fprintln(w)
	gf := func(flops, seconds float64) string {
		if flops == 0 || seconds <= 0 {
			return "–"
		}
		g := flops / seconds / 1e9
		if peak > 0 {
			return fmt.Sprintf("%.1f (%.0f%%)", g, 100*g/peak)
		}
		return fmt.Sprintf("%.1f", g)
	}
	if len(fits) > 0 {
		fmt.Fprintln(w, "Product path (`core.Model`: Fit from files, Predict on decoded images):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| backbone | images | bank | search | fit s (CPU s) | peak RSS MiB (fit / end) | predict b1 median (p90) ms | predict b8 ms/image (img/s) | image AUROC | runs (load 1m) |")
		fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
		for _, r := range fits {
			fmt.Fprintf(w, "| %s | %s | %.0f%% = %d | %s | %.2f (%s) | %.0f / %.0f | %.1f (%.1f) | %.1f (%.1f) | %s | %s |\n",
				name(r.Backbone), images(r.Images, r.Distinct), 100*r.Percentage, r.BankRows, r.NN, r.FitSeconds, cpuCell(r.FitCPU),
				r.FitRSSMiB, r.PeakRSSMiB, r.Batch1MedMs, r.Batch1P90Ms, r.Batch8MsImg, r.Batch8IPS, auroc(r.AUROC),
				runs(r.Runs, r.Machine))
		}
		fmt.Fprintln(w)
	}
	if len(stages) == 0 {
		return
	}
	fmt.Fprintln(w, "Stages (library building blocks; fit in batches of 8, test images one at a time). GFLOP/s with the share of the ceiling:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backbone | images | bank | preprocess ms/img | backbone ms/img (GFLOP/s) | embedding ms/img (% of backbone) | coreset s (CPU s; projection s) | index s | runs (load 1m) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range stages {
		fmt.Fprintf(w, "| %s | %s | %.0f%% = %d | %.2f | %.1f (%s) | %.2f (%.1f%%) | %.2f (%s; %.2f) | %.3f | %s |\n",
			name(r.Backbone), images(r.Images, r.Distinct), 100*r.Percentage, r.BankRows, r.PreprocessMs,
			r.BackboneMs, gf(r.FLOPs.Backbone, r.BackboneMs/1000), r.EmbedMs, 100*r.EmbedMs/r.BackboneMs,
			r.CoresetS, cpuCell(r.CoresetCPU), r.ProjectionS, r.IndexS, runs(r.Runs, r.Machine))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Predict path, one image at a time (ms/image): the sum of the stages is what batch-1 latency costs without the model's bookkeeping.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backbone | images | bank | preprocess | backbone (GFLOP/s) | embedding | search exact (GFLOP/s) | segmentation (GFLOP/s) | sum | backbone + search |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range stages {
		sum := r.PreprocessB1 + r.BackboneB1 + r.EmbedB1 + r.SearchMs + r.SegmentMs
		fmt.Fprintf(w, "| %s | %s | %.0f%% = %d | %.2f | %.1f (%s) | %.2f | %.2f (%s) | %.2f (%s) | %.1f | %.1f |\n",
			name(r.Backbone), images(r.Images, r.Distinct), 100*r.Percentage, r.BankRows, r.PreprocessB1,
			r.BackboneB1, gf(r.FLOPs.Backbone, r.BackboneB1/1000), r.EmbedB1, r.SearchMs, gf(r.FLOPs.Search, r.SearchMs/1000),
			r.SegmentMs, gf(r.FLOPs.Segment, r.SegmentMs/1000), sum, r.BackboneB1+r.SearchMs)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Coreset work: the plain algorithm's FLOPs (projection + start distances + k−1 full distance passes) against the time of the pruned kernel; \"plain-equivalent\" GFLOP/s above the ceiling means pruning skipped work. Where the plain loop was timed too, on the same projected rows and start points:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backbone | images | rows → bank | projection GFLOP (GFLOP/s) | greedy plain GFLOP | coreset plain-equivalent GFLOP/s | greedy loop pruned s (CPU s) | greedy loop plain s (CPU s; GFLOP/s) | speed-up (CPU) | same picks |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range stages {
		plain, speed, same := "–", "–", "–"
		if r.GreedyPlainS > 0 {
			plain = fmt.Sprintf("%.1f (%s; %s)", r.GreedyPlainS, cpuCell(r.GreedyPlainC), gf(r.FLOPs.GreedyPlain, r.GreedyPlainS))
			speed = fmt.Sprintf("%.1f×", r.GreedyPlainS/r.GreedyFastS)
			if r.GreedyFastC > 0 && r.GreedyPlainC > 0 {
				speed += fmt.Sprintf(" (%.1f×)", r.GreedyPlainC/r.GreedyFastC)
			}
			same = fmt.Sprint(r.GreedySame)
		}
		fast := "–"
		if r.GreedyFastS > 0 {
			fast = fmt.Sprintf("%.2f (%s)", r.GreedyFastS, cpuCell(r.GreedyFastC))
		}
		fmt.Fprintf(w, "| %s | %s | %d → %d | %.1f (%s) | %.0f | %s | %s | %s | %s | %s |\n",
			name(r.Backbone), images(r.Images, r.Distinct), r.Rows, r.BankRows, r.FLOPs.Projection/1e9, gf(r.FLOPs.Projection, r.ProjectionS),
			r.FLOPs.GreedyPlain/1e9, gf(r.FLOPs.Projection+r.FLOPs.GreedyPlain, r.CoresetS), fast, plain, speed, same)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Search: IVF-PQ (IVF512,PQ64, nprobe 1) against exact (IndexFlatL2), k = 1, per test image:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backbone | images | bank | exact ms | IVF-PQ ms | speed-up | recall@1 | image AUROC exact / IVF-PQ | IVF-PQ training s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range stages {
		if r.IVFNote != "" {
			fmt.Fprintf(w, "| %s | %s | %.0f%% = %d | %.2f | – | – | – | %s / – | %s |\n", name(r.Backbone), images(r.Images, r.Distinct),
				100*r.Percentage, r.BankRows, r.SearchMs, auroc(r.AUROCExact), r.IVFNote)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.0f%% = %d | %.2f | %.2f | %.1f× | %.3f | %s / %s | %.2f |\n", name(r.Backbone), images(r.Images, r.Distinct),
			100*r.Percentage, r.BankRows, r.SearchMs, r.SearchIVFMs, r.SearchMs/r.SearchIVFMs, r.RecallIVF,
			auroc(r.AUROCExact), auroc(r.AUROCIVF), r.IVFTrainS)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Analytic work (GFLOP; per image except the coreset, per fit):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backbone | images | bank | backbone (convs) | embedding | projection | greedy plain | search exact | search IVF-PQ | segmentation |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range stages {
		bb := fmt.Sprintf("%.3f (%d)", r.FLOPs.Backbone/1e9, r.FLOPs.BackboneConvs)
		if r.FLOPs.BackboneErrMsg != "" {
			bb = "not counted: " + r.FLOPs.BackboneErrMsg
		}
		fmt.Fprintf(w, "| %s | %s | %.0f%% = %d | %s | %.4f | %.1f | %.0f | %.2f | %.4f | %.4f |\n", name(r.Backbone), images(r.Images, r.Distinct),
			100*r.Percentage, r.BankRows, bb, r.FLOPs.Embed/1e9, r.FLOPs.Projection/1e9, r.FLOPs.GreedyPlain/1e9,
			r.FLOPs.Search/1e9, r.FLOPs.SearchIVF/1e9, r.FLOPs.Segment/1e9)
	}
	fmt.Fprintln(w)
	writeRatios(w, fits, stages)
}

// writeRatios compares the 60-image, 10 % runs with the reference's figures, per backbone
// the best of its runs (the machine is shared: other load only slows a run down).
func writeRatios(w io.Writer, fits []fitResult, stages []stagesResult) {
	type best struct {
		runs                 int
		embed, coreset, pred float64
		rssMiB               float64
	}
	var order []string
	byBB := map[string]*best{}
	get := func(bb string) *best {
		if b, ok := byBB[bb]; ok {
			return b
		}
		b := &best{}
		byBB[bb] = b
		order = append(order, bb)
		return b
	}
	lower := func(cur *float64, v float64) {
		if *cur == 0 || v < *cur {
			*cur = v
		}
	}
	for _, r := range stages {
		if r.Images == 60 && r.Percentage == 0.1 {
			b := get(r.Backbone)
			b.runs += r.Runs
			lower(&b.embed, (r.PreprocessMs+r.BackboneMs+r.EmbedMs)*float64(r.Images)/1000)
			lower(&b.coreset, r.CoresetS)
		}
	}
	for _, f := range fits {
		if f.Images == 60 && f.Percentage == 0.1 && f.NN == "exact" {
			b := get(f.Backbone)
			lower(&b.pred, f.Batch1MedMs/1000)
			lower(&b.rssMiB, f.FitRSSMiB)
		}
	}
	if len(order) == 0 {
		return
	}
	fmt.Fprintln(w, "Against the reference (WRN50, 60 images, 10 %: embedding 15–23 s, coreset 28–31 s, 0.23–0.41 s per predicted image, peak RSS 1.3 GiB), best of the runs above; a ratio above 1 means faster or smaller here:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backbone | stages runs | embedding s (preprocess + backbone + embed, 60 images) | ratio | coreset s | ratio | predict b1 s/image | ratio | peak RSS GiB (fit) | ratio |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	cell := func(v float64, ref [2]float64) (string, string) {
		if v == 0 {
			return "–", "–"
		}
		return fmt.Sprintf("%.3g", v), fmt.Sprintf("%.1f–%.1f×", ref[0]/v, ref[1]/v)
	}
	for _, bb := range order {
		b := byBB[bb]
		e, er := cell(b.embed, reference.embedS)
		c, cr := cell(b.coreset, reference.coresetS)
		p, pr := cell(b.pred, reference.predictS)
		m, mr := "–", "–"
		if b.rssMiB > 0 {
			m, mr = fmt.Sprintf("%.2f", b.rssMiB/1024), fmt.Sprintf("%.2f×", reference.rssGiB/(b.rssMiB/1024))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", name(bb), b.runs, e, er, c, cr, p, pr, m, mr)
	}
	fmt.Fprintln(w)
}

func name(path string) string { return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) }

func images(n, distinct int) string {
	if distinct < n {
		return fmt.Sprintf("%d (%d distinct)", n, distinct)
	}
	return fmt.Sprint(n)
}

// cpuCell prints a CPU time in seconds ("–" for results recorded without one).
func cpuCell(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

func auroc(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", v)
}

func load(m machine) string {
	return fmt.Sprintf("%.2f→%.2f", m.LoadBefore[0], m.LoadAfter[0])
}
