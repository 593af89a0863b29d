// Package sentinel observes whether this node needs a reboot, the way the
// operating system says so: a sentinel file (Debian and Ubuntu write
// /var/run/reboot-required, with the packages that asked for it in
// reboot-required.pkgs beside it) or a command whose exit code answers.
//
// An observation is one of three: True (reboot required), False (not
// required) or Unknown (the sentinel could not be read, the command failed).
// Unknown never means "required".
//
// FileWatcher tells when to look again: it watches the sentinel's parent
// folder (and that folder's parent, to survive the folder being removed and
// recreated) with inotify, and falls back to a resync ticker.
package sentinel
