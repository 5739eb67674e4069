#!/bin/sh
# Entrypoint of the redis stand-in (a test fixture), with the official image's behaviour.
set -e
# An option or a .conf file first: meant for redis-server.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
# Started as root: hand /data to the redis user, then run as it.
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --clear-groups -- "$0" "$@"
fi
# Dumps and AOF files readable by their owner only, unless a umask was set on purpose.
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi
exec "$@"
