# tests/eval (see tests/local.mk).
