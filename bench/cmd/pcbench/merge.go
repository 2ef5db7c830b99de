package main

import "fmt"

// The machine the figures come from is shared, and other load only ever slows a run
// down, so repeated runs of one configuration are merged into their best: the smallest
// time of every stage (the largest throughput), the largest peak RSS, and the range of
// load averages seen; the plain-vs-pruned coreset loop times stay paired. Quality figures
// (AUROC, recall) do not depend on the run.

// key identifies a configuration.
type key struct {
	backbone string
	images   int
	pct      float64
	nn       string
}

// lowest lowers *cur to v (a zero *cur counts as unset; zero v is ignored).
func lowest(cur *float64, v float64) {
	if v > 0 && (*cur == 0 || v < *cur) {
		*cur = v
	}
}

// loadRange widens the merged load range [LoadBefore[0], LoadAfter[0]] by one run's.
func loadRange(merged *machine, m machine) {
	lo, hi := min(m.LoadBefore[0], m.LoadAfter[0]), max(m.LoadBefore[0], m.LoadAfter[0])
	merged.LoadBefore[0] = min(merged.LoadBefore[0], lo)
	merged.LoadAfter[0] = max(merged.LoadAfter[0], hi)
}

// mergeRuns merges the runs of each configuration into one result, in first-seen order.
// tally gives a result's configuration, run count and machine; fold merges a later run
// into the configuration's result, after its run count and load range were updated.
func mergeRuns[T any](rs []T, tally func(*T) (key, *int, *machine), fold func(merged *T, r T)) []T {
	var out []T
	at := map[key]int{}
	for _, r := range rs {
		k, runs, m := tally(&r)
		i, ok := at[k]
		if !ok {
			*runs = 1
			lo, hi := min(m.LoadBefore[0], m.LoadAfter[0]), max(m.LoadBefore[0], m.LoadAfter[0])
			m.LoadBefore[0], m.LoadAfter[0] = lo, hi
			at[k] = len(out)
			out = append(out, r)
			continue
		}
		_, mergedRuns, merged := tally(&out[i])
		*mergedRuns++
		loadRange(merged, *m)
		fold(&out[i], r)
	}
	return out
}

// mergeFits merges the fit results of each configuration, in first-seen order.
func mergeFits(rs []fitResult) []fitResult {
	tally := func(r *fitResult) (key, *int, *machine) {
		return key{r.Backbone, r.Images, r.Percentage, r.NN}, &r.Runs, &r.Machine
	}
	return mergeRuns(rs, tally, func(m *fitResult, r fitResult) {
		lowest(&m.FitSeconds, r.FitSeconds)
		lowest(&m.FitCPU, r.FitCPU)
		lowest(&m.Batch1MeanMs, r.Batch1MeanMs)
		lowest(&m.Batch1MedMs, r.Batch1MedMs)
		lowest(&m.Batch1P90Ms, r.Batch1P90Ms)
		lowest(&m.Batch8MsImg, r.Batch8MsImg)
		m.Batch8IPS = max(m.Batch8IPS, r.Batch8IPS)
		m.FitRSSMiB = max(m.FitRSSMiB, r.FitRSSMiB)
		m.PeakRSSMiB = max(m.PeakRSSMiB, r.PeakRSSMiB)
	})
}

// mergeStages merges the stage results of each configuration, in first-seen order.
func mergeStages(rs []stagesResult) []stagesResult {
	tally := func(r *stagesResult) (key, *int, *machine) {
		return key{r.Backbone, r.Images, r.Percentage, ""}, &r.Runs, &r.Machine
	}
	return mergeRuns(rs, tally, func(m *stagesResult, r stagesResult) {
		for _, f := range []struct {
			cur *float64
			v   float64
		}{
			{&m.PreprocessMs, r.PreprocessMs}, {&m.BackboneMs, r.BackboneMs}, {&m.EmbedMs, r.EmbedMs},
			{&m.CoresetS, r.CoresetS}, {&m.CoresetCPU, r.CoresetCPU}, {&m.ProjectionS, r.ProjectionS},
			{&m.IndexS, r.IndexS}, {&m.IVFTrainS, r.IVFTrainS},
			{&m.PreprocessB1, r.PreprocessB1}, {&m.BackboneB1, r.BackboneB1}, {&m.EmbedB1, r.EmbedB1},
			{&m.SearchMs, r.SearchMs}, {&m.SearchIVFMs, r.SearchIVFMs}, {&m.SegmentMs, r.SegmentMs},
		} {
			lowest(f.cur, f.v)
		}
		// The plain and pruned loop times are compared with each other, so they come from
		// one run: the one whose plain loop (single-threaded, so the least disturbed by
		// load) was fastest.
		if r.GreedyPlainS > 0 && (m.GreedyPlainS == 0 || r.GreedyPlainS < m.GreedyPlainS) {
			m.GreedyFastS, m.GreedyPlainS, m.GreedyFastC, m.GreedyPlainC = r.GreedyFastS, r.GreedyPlainS, r.GreedyFastC, r.GreedyPlainC
			m.GreedySame = r.GreedySame
		}
		m.PeakRSSMiB = max(m.PeakRSSMiB, r.PeakRSSMiB)
	})
}

// runs prints a run count with the merged load range.
func runs(n int, m machine) string {
	return fmt.Sprintf("%d (%.1f–%.1f)", n, m.LoadBefore[0], m.LoadAfter[0])
}
