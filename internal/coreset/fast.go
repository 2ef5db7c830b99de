package coreset

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
)

// GreedyFast: the greedy loop of GreedyPlain with pruning.
//
// State. Besides the running score d_p (the value GreedyPlain holds), every point p is
// assigned to a centre a_p, an earlier pick, and remembers u_p = f(p, a_p), the float32
// distance exactly as GreedyPlain computed it when a_p was picked. d_p <= u_p always, and
// points are grouped by centre. Before the first pick the points form centreless
// pseudo-groups (u_p = +Inf) that are computed in full.
//
// Notation: t(·,·) is the true (real-number) distance, f(·,·) the kernel's float32
// distance. The kernel's error is bounded (see "error bound" below):
// |√max(s,0) − t(x,y)| <= e(x,y) <= σ(x) + σ(y), where s is the float32 squared distance
// it computes, f = fl(√max(s,0)) and σ(x) = √(K·|x|² + 1e-30). Since rounding is monotone
// and d_p is a float32, t(p,c) − e(p,c) >= d_p implies f(p,c) >= d_p, and then
// GreedyPlain's update min(d_p, f(p,c)) leaves d_p as it is: skipping p is exact.
//
// Three tests, cheapest first, decide that t(p,c) − e(p,c) >= d_p for a new pick c:
//
//  1. Group test (triangle inequality through the centre a of p's group):
//     t(p,c) >= t(c,a) − t(p,a) and t(p,a) <= u_p(1+2u) + e(p,a), so it suffices that
//     L(c,a) >= d_p + u_p(1+2u) + e(p,a) + e(p,c), with the lower bound
//     L(c,a) = s·√Σ_ca − qerr(c) − qerr(a) of t(c,a) from the int8 copies (test 3).
//     Evaluated once per group with its largest d_p + u_p(1+2u) and largest norm: a
//     passing group is skipped without touching its members.
//  2. The same test per member, when the group as a whole does not pass. Members are
//     mostly sorted by w_p = d_p + u_p(1+2u) (rounded up), largest first (groups are
//     created and repacked sorted; updates disorder them), so that the members passing
//     the test form a long tail that is not read at all: the tail is cut where the last
//     member with w_p > thr is, which is correct in any order.
//  3. The int8 filter (quant.go): t(p,c) >= s·√Σ − qerr(p) − qerr(c), Σ the exact integer
//     squared distance of the int8 copies; it suffices that s·√Σ >= d_p + h_p + h_c with
//     h_x = qerr(x) + σ(x). It reads D bytes per point instead of 4·D.
//
// Points that pass none of them get f(p,c) computed with the same kernel and formula as
// GreedyPlain (dotRows is bit-identical to dot): d_p = min(d_p, f), and the point moves to
// c's group when f < u_p. All bound arithmetic is float64 with a relative margin of 1e-12.
//
// Layout. A group stores its members' records (index, d_p, u_p, h_p, w_p) and their int8
// rows contiguously, so processing a group streams through memory; a point that moves
// takes its record and int8 row along. Only the exact distances read float32 rows at
// random. Groups are repacked in group order into one of two arenas from time to time.
//
// Work sharing. Each iteration cuts the groups into runs of about fastChunkPoints members
// that the workers claim from a shared counter; a group is only ever touched by one worker.
// The workers are a persistent team (team.go) that spins between iterations, because an
// iteration's parallel phase is short (~0.2-0.4 ms) next to a goroutine wake-up.
//
// Argmax. Each group keeps the maximum d of its members and the smallest index attaining
// it; the global pick is the maximum over groups, ties to the smallest index: GreedyPlain's
// first-index argmax. Only members whose score drops leave a group (they all move to the
// new one), so a group's maxD changes only when its argD member leaves, and then the group
// is rescanned; the workers return their best group, so no iteration scans all N scores.
// The largest w and the largest squared norm of a group are upper bounds (exact after a
// rescan), which only makes the tests more conservative.
//
// The error bound. With m = dotRoundings(D) and γ = m·u/(1−m·u), the kernel's dot product
// and squared norms are within γ·Σ|x_i y_i| of the exact ones, and the two float32
// additions of the expansion add at most u·(2|x|²+|y|²)(1+γ) and u·(2|x|²+2|y|²)(1+γ)(1+u).
// In total |s − t²| <= (2γ + 4u)(1+γ)(1+u)²/(1−γ)·(|x|² + |y|²) with the computed norms,
// which K below over-approximates; |√A − √B| <= √|A−B| turns it into e. The 1e-30 covers
// underflow in the products.

// fastChunkPoints and fastChunkGroups bound the work one worker claims at a time.
const (
	fastChunkPoints = 4096
	fastChunkGroups = 64
)

// pseudoGroupSize is the size of the centreless groups the points start in (several, so
// that the first full pass is shared between workers).
const pseudoGroupSize = 4096

// fastMeta is a member's record.
type fastMeta struct {
	id int32
	d  float32 // running score
	u  float32 // float32 distance to the group's centre (+Inf in a pseudo-group)
	h  float32 // qerr + σ, rounded up
	k  int32   // Σx̃² + 256·Σx̃ of the int8 row (see memberSq)
	w  float32 // d + u(1+2u), rounded up: the per-point group test's left side
}

// setW recomputes m.w after a change of m.d or m.u.
func (m *fastMeta) setW() {
	m.w = roundUp32(float64(m.d) + float64(m.u)*fastUp)
}

// fastGroup is the set of points currently assigned to one centre.
type fastGroup struct {
	centre int     // index of the pick, -1 for the initial pseudo-groups
	slot   int32   // row of the centre in fastState.crows
	hC     float64 // h of the centre
	meta   []fastMeta
	rows   []int8  // int8 rows of the members, len(meta)·D
	maxD   float32 // largest d among members
	argD   int32   // smallest member index with d == maxD
	maxW   float64 // largest w among members
	sigmaM float64 // σ of an upper bound of the members' squared norms
}

// fastWorker is one worker's scratch space.
type fastWorker struct {
	slots  []int32       // centre rows of the groups in the current chunk
	csq    []int32       // their int8 squared distances to the pick
	sq     []int32       // int8 squared distances of a group's members to the pick
	active []activeGroup // groups of the chunk with exact distances to compute
	exact  []int32       // members whose distance must be computed
	pos    []int32       // their positions in their groups
	out    []float32     // their dot products with the pick
	moved  []fastMeta    // records of the members that move to the pick's group
	mrows  []int8        // and their int8 rows
	best   *fastGroup
	dists  int64 // exact distances computed (statistics)
	approx int64 // int8 distances computed (statistics)
}

// activeGroup is a group with members whose exact distance is computed: exact[lo:hi].
type activeGroup struct {
	g      *fastGroup
	lo, hi int
}

// fastState is GreedyFast's working memory: O(N·D) bytes besides the points.
type fastState struct {
	p      *Points
	kErr   float64 // K of the error bound
	qz     *quantizer
	crows  []int8  // int8 rows of the centres, by slot
	c16    []int16 // the pick's int8 row, widened
	cu8    []uint8 // the pick's int8 row + 128
	cSq    int64   // Σ c̃²
	groups []*fastGroup
	chunks []int // group index boundaries of this iteration's work items

	// Group storage. After a defragmentation every group's records and rows lie in
	// arena[cur], in group order, so that a pass over the groups streams through memory;
	// groups created since then have their own allocations (fresh members in total).
	arenaMeta [2][]fastMeta
	arenaRows [2][]int8
	cur       int
	fresh     int
	workers   []fastWorker
	team      *team // runs each pick's parallel phase
}

// fastStats are counters reported by the tests and benchmarks.
type fastStats struct {
	distances int64 // exact point-to-pick distances (GreedyPlain: N per pick but the last)
	approx    int64 // int8 point-to-pick distances
	groupDist int64 // int8 pick-to-centre distances
	moved     int64 // points moved to a new group
}

// GreedyFast selects the same indices as GreedyPlain(init, k), usually computing far fewer
// exact distances, on up to the Points' worker count of goroutines.
func (p *Points) GreedyFast(init []float32, k int) []int {
	sel, _ := p.greedyFast(init, k)
	return sel
}

// sigma is σ(x) for a squared norm nx.
func (s *fastState) sigma(nx float32) float64 {
	return math.Sqrt(s.kErr*float64(nx) + 1e-30)
}

// better reports whether group a holds a better pick than b (larger d, then smaller index).
func better(a, b *fastGroup) bool {
	return b == nil || a.maxD > b.maxD || (a.maxD == b.maxD && a.argD < b.argD)
}

// roundUp32 is the smallest float32 >= x.
func roundUp32(x float64) float32 {
	f := float32(x)
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

func (p *Points) greedyFast(init []float32, k int) ([]int, fastStats) {
	var st fastStats
	if k <= 0 || p.n == 0 {
		return []int{}, st
	}
	m := float64(dotRoundings(p.d))
	gamma := m * unitRoundoff / (1 - m*unitRoundoff)
	s := &fastState{
		p:       p,
		kErr:    (2*gamma + 4*unitRoundoff) * 1.001,
		qz:      p.newQuantizer(),
		c16:     make([]int16, p.d),
		cu8:     make([]uint8, p.d),
		workers: make([]fastWorker, p.workers),
		team:    newTeam(p.workers),
	}
	defer s.team.close()
	inf := float32(math.Inf(1))
	s.arenaMeta[0] = make([]fastMeta, p.n)
	s.arenaRows[0] = make([]int8, (p.n+rowPad)*p.d)
	for lo := 0; lo < p.n; lo += pseudoGroupSize {
		hi := min(lo+pseudoGroupSize, p.n)
		s.groups = append(s.groups, &fastGroup{centre: -1,
			meta: s.arenaMeta[0][lo:hi:hi], rows: s.arenaRows[0][lo*p.d : hi*p.d : (hi+rowPad)*p.d]})
	}
	parallelChunks(len(s.groups), p.workers, 1, func(_, lo, hi int) {
		for gi := lo; gi < hi; gi++ {
			g := s.groups[gi]
			base := gi * pseudoGroupSize
			for i := range g.meta {
				id := base + i
				row := g.rows[i*p.d : (i+1)*p.d]
				qerr := s.qz.encode(p.row(id), row)
				var k int32
				for _, v := range row {
					k += int32(v)*int32(v) + 256*int32(v)
				}
				g.meta[i] = fastMeta{id: int32(id), d: init[id], u: inf, h: roundUp32(qerr + s.sigma(p.norms[id])), k: k}
				g.meta[i].setW()
			}
			s.stats(g, true)
		}
	})
	var best *fastGroup
	for _, g := range s.groups {
		if better(g, best) {
			best = g
		}
	}

	sel := make([]int, 0, k)
	for t := 0; t < k; t++ {
		c := int(best.argD)
		sel = append(sel, c)
		if t == k-1 {
			break
		}
		for _, g := range s.groups {
			if g.centre >= 0 {
				st.groupDist++
			}
		}
		var ng *fastGroup
		best, ng = s.update(c, best)
		st.moved += int64(len(ng.meta))
	}
	for _, w := range s.workers {
		st.distances += w.dists
		st.approx += w.approx
	}
	return sel, st
}

// update applies pick c, a member of group cg: lowers scores, moves points to c's new
// group, refreshes the maxima of the groups it touched and drops empty groups. It returns
// the group holding the next pick and the new group.
func (s *fastState) update(c int, cg *fastGroup) (best, ng *fastGroup) {
	p := s.p
	d := p.d
	// The pick's int8 row and h, from its record.
	var hc float64
	for i, m := range cg.meta {
		if int(m.id) == c {
			s.cSq = 0
			for j, v := range cg.rows[i*d : (i+1)*d] {
				s.c16[j] = int16(v)
				s.cu8[j] = uint8(int16(v) + 128)
				s.cSq += int64(v) * int64(v)
			}
			hc = float64(m.h)
			break
		}
	}
	slot := int32(len(s.crows) / d)
	for _, v := range s.c16 {
		s.crows = append(s.crows, int8(v))
	}
	rc := p.row(c)
	nc := p.norms[c]

	// Work items: runs of groups with about fastChunkPoints members.
	s.chunks = append(s.chunks[:0], 0)
	size := 0
	for i, g := range s.groups {
		size += len(g.meta)
		if size >= fastChunkPoints || i+1-s.chunks[len(s.chunks)-1] >= fastChunkGroups {
			s.chunks = append(s.chunks, i+1)
			size = 0
		}
	}
	if s.chunks[len(s.chunks)-1] != len(s.groups) {
		s.chunks = append(s.chunks, len(s.groups))
	}
	for w := range s.workers {
		ws := &s.workers[w]
		ws.moved, ws.mrows, ws.best = ws.moved[:0], ws.mrows[:0], nil
	}
	var next atomic.Int64
	nch := len(s.chunks) - 1
	s.team.run(func(worker int) {
		ws := &s.workers[worker]
		for ch := int(next.Add(1)) - 1; ch < nch; ch = int(next.Add(1)) - 1 {
			s.chunk(s.groups[s.chunks[ch]:s.chunks[ch+1]], rc, nc, hc, ws)
		}
	})

	ng = &fastGroup{centre: c, slot: slot, hC: hc}
	total := 0
	for w := range s.workers {
		total += len(s.workers[w].moved)
	}
	type src struct {
		w  float32
		wk int32 // worker
		i  int32 // index in its moved list
	}
	order := make([]src, 0, total)
	for w := range s.workers {
		for i, m := range s.workers[w].moved {
			order = append(order, src{m.w, int32(w), int32(i)})
		}
	}
	slices.SortFunc(order, func(a, b src) int { return cmp.Compare(b.w, a.w) })
	ng.meta = make([]fastMeta, total)
	ng.rows = make([]int8, total*d, (total+rowPad)*d)
	for j, o := range order {
		mv := &s.workers[o.wk]
		ng.meta[j] = mv.moved[o.i]
		copy(ng.rows[j*d:(j+1)*d], mv.mrows[int(o.i)*d:int(o.i+1)*d])
	}
	s.stats(ng, true)
	kept := s.groups[:0]
	for _, g := range s.groups {
		if len(g.meta) > 0 {
			kept = append(kept, g)
		}
	}
	clear(s.groups[len(kept):])
	s.groups = kept
	if len(ng.meta) > 0 {
		s.groups = append(s.groups, ng)
		best = ng
	}
	s.fresh += len(ng.meta)
	if s.fresh > p.n/defragFraction {
		s.defragment()
	}
	for w := range s.workers {
		if b := s.workers[w].best; b != nil && better(b, best) {
			best = b
		}
	}
	return best, ng
}

// chunk processes a run of groups for pick c (row rc, squared norm nc, h_c = hc): the
// group test, then for the groups that fail it the int8 filter and per-point group test
// on every member, then the exact distances of the members nothing decided, in one batch.
func (s *fastState) chunk(gs []*fastGroup, rc []float32, nc float32, hc float64, ws *fastWorker) {
	p := s.p
	d := p.d
	scale, inv := s.qz.scale, 1/s.qz.scale
	ws.slots = ws.slots[:0]
	for _, g := range gs {
		if g.centre >= 0 {
			ws.slots = append(ws.slots, g.slot)
		}
	}
	ws.csq = growInt32(ws.csq, len(ws.slots))
	sqDist8Rows(s.c16, s.crows, d, ws.slots, ws.csq)

	ws.active = ws.active[:0]
	ws.exact = ws.exact[:0]
	ws.pos = ws.pos[:0]
	j := 0
	for _, g := range gs {
		thr := math.Inf(-1)
		if g.centre >= 0 {
			lca := scale*math.Sqrt(float64(ws.csq[j]))*(1-1e-12) - hc - g.hC
			j++
			thr = (lca - 2*g.sigmaM) * (1 - 1e-12)
		}
		if g.maxW > thr {
			before := len(ws.exact)
			if g.centre < 0 {
				// Pseudo-groups: every point gets the exact distance and a centre.
				for i, m := range g.meta {
					ws.exact = append(ws.exact, m.id)
					ws.pos = append(ws.pos, int32(i))
				}
			} else {
				// Members after the last one failing the per-point group test (w > thr)
				// need nothing; there are many as members are mostly sorted by w.
				n := len(g.meta)
				for n > 0 && float64(g.meta[n-1].w) <= thr {
					n--
				}
				sq, raw := s.memberSq(g, n, &ws.sq)
				ws.approx += int64(n)
				hcs := hc * inv
				for i, m := range g.meta[:n] {
					q := int64(sq[i])
					if raw {
						q = int64(m.k) + s.cSq - 2*q
					}
					t := (float64(m.d)+float64(m.h))*inv + hcs
					if float64(q) < t*t*(1+1e-12) {
						ws.exact = append(ws.exact, m.id)
						ws.pos = append(ws.pos, int32(i))
					}
				}
			}
			if len(ws.exact) > before {
				// Only groups with exact distances to compute change.
				ws.active = append(ws.active, activeGroup{g, before, len(ws.exact)})
			}
		}
	}
	if len(ws.exact) > 0 {
		s.apply(rc, nc, ws)
	}
	for _, g := range gs {
		if len(g.meta) > 0 && better(g, ws.best) {
			ws.best = g
		}
	}
}

// apply computes the queued exact distances to pick c (row rc, squared norm nc), lowers
// scores, moves the members that c is nearer to than their centre, and refreshes the
// maxima of the groups concerned.
func (s *fastState) apply(rc []float32, nc float32, ws *fastWorker) {
	p := s.p
	d := p.d
	ws.out = grow(ws.out, len(ws.exact))
	dotRows(rc, p.data, d, ws.exact, ws.out)
	ws.dists += int64(len(ws.exact))

	for _, a := range ws.active {
		g := a.g
		rescan := false
		// Backwards, so that swap-removing a member never moves one still to be visited.
		for e := a.hi - 1; e >= a.lo; e-- {
			i := int(ws.pos[e])
			m := &g.meta[i]
			f := distFromDot(p.norms[m.id], nc, ws.out[e])
			if f >= m.u { // then f >= d_p too: nothing changes
				continue
			}
			// c is nearer than the centre: lower d_p (GreedyPlain's min) and move. The
			// group's maxima stay valid (maxW as an upper bound) unless the member
			// holding maxD leaves.
			rescan = rescan || m.id == g.argD
			m.d = min(m.d, f)
			m.u = f
			m.setW()
			ws.moved = append(ws.moved, *m)
			ws.mrows = append(ws.mrows, g.rows[i*d:(i+1)*d]...)
			last := len(g.meta) - 1
			if i != last {
				g.meta[i] = g.meta[last]
				copy(g.rows[i*d:(i+1)*d], g.rows[last*d:(last+1)*d])
			}
			g.meta, g.rows = g.meta[:last], g.rows[:last*d]
		}
		if rescan {
			s.stats(g, false)
		}
	}
}

// rowPad is the number of rows of slack behind every group's int8 rows (cap(rows) covers
// them): the VNNI kernel works on 4 rows at a time and reads, then ignores, up to 3 rows
// past a group's end.
const rowPad = 3

// memberSq computes the exact int8 squared distances Σ_j (x̃_ij − c̃_j)² of the first n
// members of g to the pick, in buf's storage. Where the CPU multiplies signed by unsigned bytes
// (VNNI) it returns raw = true and X_i = Σ_j x̃_ij·(c̃_j+128) instead, from which
// Σ(x̃ − c̃)² = (Σx̃² + 256·Σx̃) + Σc̃² − 2X = k_i + cSq − 2X_i.
func (s *fastState) memberSq(g *fastGroup, n int, buf *[]int32) (out []int32, raw bool) {
	d := s.p.d
	n4 := (n + rowPad) &^ 3
	*buf = growInt32(*buf, n4)
	out = *buf
	if dotU8Rows(s.cu8, g.rows[:n4*d], d, out[:n4]) == n4 {
		return out[:n], true
	}
	sqDist8Contig(s.c16, g.rows[:n*d], d, out[:n])
	return out[:n], false
}

// defragFraction: the groups are repacked once more than N/defragFraction members live
// outside the arena.
const defragFraction = 2

// defragment copies every group's records and rows into the other arena, in group order,
// each group sorted by w again (updates and swap-removals disorder them over time).
func (s *fastState) defragment() {
	d := s.p.d
	s.cur ^= 1
	if s.arenaMeta[s.cur] == nil {
		s.arenaMeta[s.cur] = make([]fastMeta, s.p.n)
		s.arenaRows[s.cur] = make([]int8, (s.p.n+rowPad)*d)
	}
	meta, rows := s.arenaMeta[s.cur], s.arenaRows[s.cur]
	off := 0
	var order []int
	for _, g := range s.groups {
		n := len(g.meta)
		order = order[:0]
		for i := range n {
			order = append(order, i)
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(g.meta[b].w, g.meta[a].w) })
		for j, i := range order {
			meta[off+j] = g.meta[i]
			copy(rows[(off+j)*d:(off+j+1)*d], g.rows[i*d:(i+1)*d])
		}
		g.meta = meta[off : off+n : off+n]
		g.rows = rows[off*d : (off+n)*d : (off+n+rowPad)*d]
		s.stats(g, false) // tightens maxW
		off += n
	}
	s.fresh = 0
}

// stats computes a group's maxima from its members; the norm bound only when norms is
// set (members only leave a group, so the old bound stays valid).
func (s *fastState) stats(g *fastGroup, norms bool) {
	g.maxD, g.argD, g.maxW = float32(math.Inf(-1)), -1, math.Inf(-1)
	for _, m := range g.meta {
		if m.d > g.maxD || (m.d == g.maxD && m.id < g.argD) {
			g.maxD, g.argD = m.d, m.id
		}
		g.maxW = max(g.maxW, float64(m.w))
	}
	if norms {
		var maxN float32
		for _, m := range g.meta {
			maxN = max(maxN, s.p.norms[m.id])
		}
		g.sigmaM = s.sigma(maxN)
	}
}

// fastUp is 1+2u, the factor that bounds √max(s,0) from a float32 distance f = fl(√max(s,0)).
const fastUp = 1 + 2*unitRoundoff

// grow returns b resliced to length n, reallocated when too small.
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n, n+n/4)
	}
	return b[:n]
}

// growInt32 returns b resliced to length n, reallocated when too small.
func growInt32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n, n+n/4)
	}
	return b[:n]
}
