// Package packaging holds the tests of the .deb packages that
// scripts/package/build-deb.sh builds (make package): their contents,
// lintian, the systemd unit. It has no code of its own.
package packaging
