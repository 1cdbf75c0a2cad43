# Lab 17 is built with liburing (pkg-config's liburing; README.md's apt-get
# line installs liburing-dev).  It builds on no earlier lab's code: the
# completion model replaces the readiness loop of labs 06-08 whole.
# See the Makefile's header for what a lab.mk may say.
PKGS := liburing
