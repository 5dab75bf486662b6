# tests/model (see tests/local.mk).
