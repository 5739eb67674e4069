#!/bin/sh
# As in the official node image: an option, or a first argument that is no command (a script
# path, say), is meant for node.
set -e
if [ "${1#-}" != "$1" ] || ! command -v "$1" >/dev/null 2>&1 || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
