# tests/cli (see tests/local.mk).
