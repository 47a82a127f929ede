// Package web embeds the built operator app (web/dist) into the binary.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the built app. It holds only .gitkeep until `npm run build` ran;
// Built reports which.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}

// Built reports whether the embedded app has an index.html.
func Built() bool {
	_, err := fs.Stat(Dist(), "index.html")
	return err == nil
}
