# scripts: set-up, demo, export and benchmark tools.
EXTRA_DIST += scripts/install-deps scripts/check
