// Package reboot reboots the host, by one of three methods behind the
// Rebooter interface:
//
//   - Command runs a command (by default systemctl reboot), normally in the
//     host's mount namespace through nsenter.
//   - Signal sends a signal to PID 1 (SIGRTMIN+5 asks systemd for an orderly
//     reboot, like systemctl reboot).
//   - DBus calls org.freedesktop.login1.Manager.Reboot on the system bus.
//
// Every method asks the init system for an orderly reboot; none forces one.
// A Rebooter returns once the request was accepted: the reboot itself happens
// later and kills the caller.
package reboot
