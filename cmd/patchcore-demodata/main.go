// Command patchcore-demodata writes the demo anomaly-detection data set (MVTec AD layout,
// categories brick, grass and gravel cut from CC0 photographs) described in package
// internal/demodata. Fetch the photos first with scripts/fetch-demo-photos.sh.
//
//	patchcore-demodata -out /tmp/demo [-photos .deps/photos] [-seed 1] [-size 256]
//	                   [-train 30] [-test-good 10] [-test-defect 8]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/libpatchcore/libpatchcore/internal/demodata"
)

func main() {
	def := demodata.DefaultOptions(".deps/photos", "")
	opts := def
	flag.StringVar(&opts.PhotoDir, "photos", def.PhotoDir, "directory with brick.png, grass.png, gravel.png")
	flag.StringVar(&opts.OutDir, "out", "", "output directory (must not exist or be empty)")
	flag.Uint64Var(&opts.Seed, "seed", def.Seed, "random seed; equal seeds give identical files")
	flag.IntVar(&opts.Size, "size", def.Size, "image side in pixels")
	flag.IntVar(&opts.TrainPerCategory, "train", def.TrainPerCategory, "train/good images per category")
	flag.IntVar(&opts.TestGoodPerCategory, "test-good", def.TestGoodPerCategory, "test/good images per category")
	flag.IntVar(&opts.TestDefectPerType, "test-defect", def.TestDefectPerType, "test images per defect type and category")
	flag.Parse()
	if opts.OutDir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	if err := demodata.Generate(opts); err != nil {
		fmt.Fprintln(os.Stderr, "patchcore-demodata:", err)
		os.Exit(1)
	}
	cats, types := demodata.Categories(), demodata.DefectTypes()
	perCat := opts.TrainPerCategory + opts.TestGoodPerCategory + len(types)*opts.TestDefectPerType
	fmt.Printf("wrote %d images (%d categories × %d) and %d masks to %s in %.2fs\n",
		len(cats)*perCat, len(cats), perCat, len(cats)*len(types)*opts.TestDefectPerType, opts.OutDir, time.Since(start).Seconds())
}
