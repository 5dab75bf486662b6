# tests/engine (see tests/local.mk).
