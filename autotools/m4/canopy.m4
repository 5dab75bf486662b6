# canopy.m4 -- configure checks for canopy's dependencies.
# Each missing piece stops configure and names the Debian package to install.

# CNP_REQUIRE_PKG(VARIABLE-PREFIX, MODULES, DEBIAN-PACKAGE)
# PKG_CHECK_MODULES, which keeps user-set PREFIX_CFLAGS / PREFIX_LIBS.
AC_DEFUN([CNP_REQUIRE_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$2 not found by pkg-config ($$1_PKG_ERRORS).
Install it (Debian: apt-get install $3) or set $1_CFLAGS and $1_LIBS.])])
])

# CNP_CHECK_PROTOC_C: the protobuf-c code generator.
AC_DEFUN([CNP_CHECK_PROTOC_C], [
  AC_ARG_VAR([PROTOC_C], [protobuf-c compiler])
  AC_PATH_PROG([PROTOC_C], [protoc-c])
  AS_IF([test "x$PROTOC_C" = x],
        [AC_MSG_ERROR([protoc-c not found (Debian: apt-get install protobuf-c-compiler)])])
])

# CNP_CHECK_ONNX_PROTO: onnx.proto, from libonnx-dev or --with-onnx-proto=PATH.
AC_DEFUN([CNP_CHECK_ONNX_PROTO], [
  AC_ARG_WITH([onnx-proto],
    [AS_HELP_STRING([--with-onnx-proto=PATH], [onnx.proto to compile (default: /usr/include/onnx/onnx.proto)])],
    [ONNX_PROTO=$withval], [ONNX_PROTO=/usr/include/onnx/onnx.proto])
  AC_MSG_CHECKING([for onnx.proto])
  AS_IF([test -r "$ONNX_PROTO"], [AC_MSG_RESULT([$ONNX_PROTO])],
        [AC_MSG_RESULT([no])
         AC_MSG_ERROR([$ONNX_PROTO not found (Debian: apt-get install libonnx-dev, or --with-onnx-proto=PATH)])])
  AC_SUBST([ONNX_PROTO])
])

# CNP_CHECK_OPENBLAS: OpenBLAS with its cblas interface and openblas_* controls.
AC_DEFUN([CNP_CHECK_OPENBLAS], [
  AC_ARG_VAR([OPENBLAS_CFLAGS], [C compiler flags for OpenBLAS])
  AC_ARG_VAR([OPENBLAS_LIBS], [linker flags for OpenBLAS])
  AS_IF([test "x$OPENBLAS_LIBS" = x],
        [PKG_CHECK_MODULES([OPENBLAS], [openblas], [], [OPENBLAS_LIBS=-lopenblas])])
  cnp_save_LIBS=$LIBS; cnp_save_CFLAGS=$CFLAGS
  LIBS="$OPENBLAS_LIBS $LIBS"; CFLAGS="$OPENBLAS_CFLAGS $CFLAGS"
  AC_CHECK_HEADER([cblas.h], [],
    [AC_MSG_ERROR([cblas.h not found (Debian: apt-get install libopenblas-dev)])])
  AC_MSG_CHECKING([for cblas_sgemm and openblas_get_corename])
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cblas.h>]],
      [[float a = 1, b = 1, c = 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
        return openblas_get_corename() == 0;]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([OpenBLAS does not link (Debian: apt-get install libopenblas-dev)])])
  LIBS=$cnp_save_LIBS; CFLAGS=$cnp_save_CFLAGS
])
