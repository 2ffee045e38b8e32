#!/bin/sh
# Container entrypoint: migrate the database, then become the daemon.
#
#   (no arguments) | run [OPTIONS]  ->  rebalancerd migrate; exec rebalancerd run [OPTIONS]
#   anything else                   ->  exec rebalancerd ARGS  (check-config, decisions, ...)
#
# The config comes from REBALANCERD_CONFIG, the database from REBALANCERD_DATABASE_URL
# (both set in the image). `exec` makes the daemon PID 1's direct replacement, so
# SIGTERM from `docker stop` reaches it and its exit code is the container's.
set -eu

if [ "$#" -gt 0 ] && [ "$1" != "run" ]; then
    exec rebalancerd "$@"
fi
[ "$#" -gt 0 ] && shift

rebalancerd migrate
exec rebalancerd run "$@"
