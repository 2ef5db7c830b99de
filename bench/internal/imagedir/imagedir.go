// Package imagedir lists the images of the benchmark programs' data sets: a folder of
// PNG/JPEG files, or an MVTec-style test folder with one subfolder per kind of image.
package imagedir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// List returns the PNG and JPEG files of dir (by extension, any case), sorted by name.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// TestSet lists the images of every subfolder dir/<kind>/, sorted by kind then name, with
// anomalous[i] false for the kind "good" and true for every other kind.
func TestSet(dir string) (paths []string, anomalous []bool, err error) {
	kinds, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		imgs, err := List(filepath.Join(dir, k.Name()))
		if err != nil {
			return nil, nil, err
		}
		for _, p := range imgs {
			paths = append(paths, p)
			anomalous = append(anomalous, k.Name() != "good")
		}
	}
	return paths, anomalous, nil
}
