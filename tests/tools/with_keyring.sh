#!/bin/sh
# Runs a command inside a private D-Bus session with an unlocked gnome-keyring, the Secret
# Service that QtKeychain talks to, under a throw-away HOME so no real keyring is touched.
# With --no-keyring, the session has no keyring: gnome-keyring is started on demand by D-Bus
# activation, has no keyring to store into and no prompter to create one (what a desktop
# without a login keyring gives). The daemon exits with the session bus when the command ends.
#   tests/tools/with_keyring.sh [--no-keyring] COMMAND [ARGS...]
set -eu
unlock=1
if [ "${1:-}" = "--no-keyring" ]; then
  unlock=0
  shift
fi
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
HOME=$home XDG_DATA_HOME=$home/.local/share XDG_CONFIG_HOME=$home/.config UNLOCK=$unlock \
  dbus-run-session -- sh -c '
    mkdir -p "$XDG_DATA_HOME/keyrings"
    if [ "$UNLOCK" = 1 ]; then
      # A fresh login keyring is created with this password and left unlocked.
      eval "$(printf pw | gnome-keyring-daemon --daemonize --unlock --components=secrets)"
      export GNOME_KEYRING_CONTROL
      # The daemon claims its bus name a moment after --daemonize returns. A client that asks
      # before then makes D-Bus start a second daemon, which has no password and so no login
      # keyring (seen on a loaded CI machine). Wait for the name, without asking the service
      # itself (that would start the second daemon); 20 s, then the test reports what it finds.
      tries=0
      until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
          org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
          grep -q "boolean true"; do
        tries=$((tries + 1))
        [ "$tries" -ge 200 ] && break
        sleep 0.1
      done
    fi
    unset DISPLAY WAYLAND_DISPLAY
    "$@"' sh "$@"
