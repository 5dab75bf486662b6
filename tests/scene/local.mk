# tests/scene (see tests/local.mk).
