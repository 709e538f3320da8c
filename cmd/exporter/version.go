package main

import (
	"runtime/debug"
)

// buildVersion is the version a binary reports when no -ldflags set
// prometheus/common/version.Version: the main module's version from the
// build information (`go install …@v1.2.3` gives v1.2.3, a build in a git
// checkout a pseudo-version), or "(devel)" when there is none.
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil || info.Main.Version == "" {
		return "(devel)"
	}
	return info.Main.Version
}
