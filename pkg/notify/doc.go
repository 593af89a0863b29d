// Package notify sends notifications about the controller's steps (drain,
// reboot, uncordon, failures) to chat and webhook services through
// shoutrrr URLs (--notify-url), formatted with Go templates. Sending is
// asynchronous, through a bounded queue with a timeout per message: a slow
// or broken service never holds up a rollout; every message is logged and
// counted (nodereboot_notifications_total{result}).
package notify
