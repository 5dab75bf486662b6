# classifier/eval: sources and data of this module (see the top-level Makefile.am).
