/* graph.h -- internal to classifier/engine: the model between the ONNX
 * loader (onnx_load.c, onnx_parser.c), the fusion and shape
 * passes (graph.c), the planner (plan.c), the executor (forward.c, tta.c)
 * and the summary (info.c).
 *
 * onnx_lower.c lowers the ONNX operators (onnx_parse.h holds the parser
 * state the two ONNX files share).
 *
 * The metadata schema lives in onnx/ (onnx.h).
 *
 * A model is a list of values (tensors) and a list of nodes in ONNX's
 * topological order. Nodes are lowered from ONNX operators at load time;
 * fusion marks nodes dead and rewires the survivors, so the executor simply
 * runs the live nodes in order. Dimensions that depend on the input size are
 * computed by the shape pass (cnp_graph_shapes), once at load time at the
 * reference size and again by cnp_model_prepare at the planned size.
 */
#ifndef CNP_ENGINE_GRAPH_H
#define CNP_ENGINE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "engine/engine.h"
#include "engine/kernels.h"

#define CNP_MAX_RANK 8   /* most dimensions of a constant or shape tensor */

/* Operators after lowering. */
typedef enum {
    CNP_OP_CONV,        /* Conv (+ folded BatchNormalization, Add, Relu) */
    CNP_OP_MAXPOOL,
    CNP_OP_AVGPOOL,
    CNP_OP_GAVGPOOL,    /* GlobalAveragePool, ReduceMean over H,W */
    CNP_OP_GMAXPOOL,    /* GlobalMaxPool, ReduceMax over H,W */
    CNP_OP_AFFINE,      /* BatchNormalization not folded, Add of a constant */
    CNP_OP_ADD,         /* Add of two activations (+ Relu) */
    CNP_OP_RELU,
    CNP_OP_SIGMOID,
    CNP_OP_CONCAT,      /* Concat of activations on the channel axis */
    CNP_OP_FLATTEN,     /* Flatten, Reshape to (N, -1) */
    CNP_OP_LINEAR,      /* Gemm, MatMul by a constant (+ folded BN, bias, Relu) */
    CNP_OP_SHAPE,       /* shape arithmetic, evaluated by the shape pass */
    CNP_OP_GATHER,
    CNP_OP_UNSQUEEZE,
    CNP_OP_SQUEEZE,
    CNP_OP_ICONCAT
} cnp_op;

/* Kinds of values. */
typedef enum {
    CNP_VAL_UNDEF = 0,  /* named but never produced (optional outputs) */
    CNP_VAL_ACT,        /* float activation, computed per batch */
    CNP_VAL_FCONST,     /* float tensor: initializer or Constant */
    CNP_VAL_ICONST,     /* int64 tensor: initializer or Constant */
    CNP_VAL_SHAPE       /* int64 computed from shapes only */
} cnp_val_kind;

/* Layout of an activation (see kernels.h). */
typedef enum {
    CNP_LAYOUT_CNHW = 0, /* (C, N*H*W) */
    CNP_LAYOUT_ROWS = 1  /* (N, C) row-major; 4-D only with H = W = 1 */
} cnp_layout;

/* One element of a shape tensor: a constant or the batch size N. */
typedef struct cnp_symint {
    int64_t v;
    int batch;          /* 1: the value is N (v unused) */
} cnp_symint;

typedef struct cnp_value {
    char *name;
    cnp_val_kind kind;
    int producer;       /* node index; -1 for the graph input and constants */
    int n_refs;         /* references by ONNX nodes (weights shared?) */
    int n_uses;         /* uses by live nodes, +1 for the graph output */

    /* constants (FCONST, ICONST) */
    int rank;
    int64_t dims[CNP_MAX_RANK];
    size_t count;
    float *f;           /* (count), in the model's arena */
    int64_t *i;         /* (count), in the model's arena */

    /* activations: set by the shape pass */
    cnp_layout layout;
    int act_rank;       /* 2 or 4 */
    int C, H, W;        /* ROWS: C features, H = W = 1 */

    /* shape values (SHAPE, and ICONST of rank <= 1 with <= CNP_MAX_RANK
     * elements): set by the loader (ICONST) or the shape pass (SHAPE) */
    int sym_rank;       /* 0 scalar, 1 vector, -1 not representable */
    int n_sym;
    cnp_symint sym[CNP_MAX_RANK];

    /* planning */
    int alias;          /* value whose buffer this one shares, or -1 */
    int buf;            /* buffer index, or -1 */
    int last_use;       /* last live node reading it */
    size_t chip_floats; /* floats per chip */
} cnp_value;

typedef struct cnp_conv_op {
    int K, C, R, S;
    int stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w;
    float *w;           /* (K, C, R, S) */
    float *bias;        /* (K) or NULL */
    int wval;           /* value the weights came from */
    int w_own;          /* w may be modified in place (not shared) */
    int residual;       /* value added before the activation, or -1 */
    int n_bn;           /* BatchNormalizations folded in */
    cnp_conv_shape shape;   /* prepared */
    cnp_conv_plan *plan;    /* prepared; owned by the node */
} cnp_conv_op;

typedef struct cnp_pool_op {
    int R, S, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
    int ceil_mode, count_include_pad;
    cnp_pool_shape shape;   /* set by the shape pass */
} cnp_pool_op;

typedef struct cnp_linear_op {
    int K, M;
    float *w;           /* (M, K) row-major */
    float *bias;        /* (M) or NULL */
    int n_bn;           /* BatchNormalizations folded in */
} cnp_linear_op;

typedef struct cnp_affine_op {
    int F;              /* entries of scale/shift; 1 broadcasts */
    float *scale;       /* (F) */
    float *shift;       /* (F) */
} cnp_affine_op;

typedef struct cnp_axes_op {
    int axis;           /* Gather, Concat, Flatten */
    int n_axes;
    int64_t axes[CNP_MAX_RANK]; /* Unsqueeze, Squeeze, Reduce */
    int keepdims;       /* Reduce */
    int64_t start, end; /* Shape (opset 15) */
    int has_end;
} cnp_axes_op;

typedef struct cnp_node {
    cnp_op op;
    const char *onnx_op;    /* ONNX operator of origin (static string) */
    char *name;             /* ONNX node name, or "#index" */
    int n_in;
    int *in;                /* (n_in) value indices; -1 for an omitted input */
    int out;
    int dead;
    cnp_act act;            /* CONV, LINEAR, ADD */
    union {
        cnp_conv_op conv;
        cnp_pool_op pool;
        cnp_linear_op lin;
        cnp_affine_op aff;
        cnp_axes_op ax;
    } u;
} cnp_node;

/* Bump allocator for everything a model keeps (weights, names, tables):
 * one big block for the weights, more blocks as needed, freed at once. */
typedef struct cnp_arena_block cnp_arena_block;
typedef struct cnp_arena {
    cnp_arena_block *head;
    size_t total;
} cnp_arena;

/* n * size bytes, 64-byte aligned, zeroed; NULL with CNP_ERR_NOMEM. Owned by
 * the arena. */
void *cnp_arena_alloc(cnp_ctx *ctx, cnp_arena *a, size_t n, size_t size, const char *what);
/* Reserves a block of at least `bytes` so that later allocations up to that
 * much land in one slab. */
cnp_status cnp_arena_reserve(cnp_ctx *ctx, cnp_arena *a, size_t bytes);
/* A copy of s (NULL: "") owned by the arena; NULL with CNP_ERR_NOMEM. */
char *cnp_arena_strdup(cnp_ctx *ctx, cnp_arena *a, const char *s);
void cnp_arena_release(cnp_arena *a);

/* Operator census of the ONNX file (for `canopy info`). */
typedef struct cnp_op_count {
    const char *name;       /* in the arena */
    int count;
} cnp_op_count;

/* The model as loaded: values and nodes after lowering and fusion, the
 * graph's inputs and outputs, statistics, shapes of the last shape pass. */
typedef struct cnp_graph {
    cnp_arena arena;
    char *path;             /* as given (arena) */
    char *producer;         /* (arena) */
    int opset;
    int64_t ir_version;

    cnp_value *values;      /* (n_values), malloc'd */
    int n_values, cap_values;
    cnp_node *nodes;        /* (n_nodes), malloc'd */
    int n_nodes;
    int n_onnx_nodes;
    cnp_op_count *ops;      /* (n_ops), malloc'd */
    int n_ops;
    const char **op_names;  /* (n_ops) views of ops[], for cnp_model_info */
    int *op_counts;         /* (n_ops) */

    int input;              /* value index of the graph input */
    int output;             /* value index of the logits or probabilities */
    char *input_name, *output_name; /* (arena) */
    int in_C;               /* input channels */
    int fixed_h, fixed_w;   /* fixed-size export, 0 when dynamic */
    int fixed_batch;        /* fixed batch dimension of the export, 0 dynamic */
    int ends_in_sigmoid;    /* the file's graph ends in Sigmoid */
    int apply_sigmoid;      /* the executor applies the sigmoid to the output */

    /* statistics of the graph (load time) */
    int n_conv, n_fused_bn, n_fused_add, n_linear;
    int n_add_total;        /* ONNX Add nodes between activations */
    int has_gmp, has_gap, has_concat;
    size_t n_params;
    double gflops_meta;     /* per chip at meta.input_size */
    char *arch;             /* (arena) */

    /* shape pass results */
    double gflops;          /* per chip at the size of the last shape pass */
    int n_out;              /* features of the output */
} cnp_graph;

/* What cnp_model_prepare() made (plan.c): sizes, kernel settings, every
 * buffer the forward pass uses (one slab, TTA buffers included); the
 * convolution plans hang off the graph's Conv nodes. */
typedef struct cnp_plan {
    int prepared;
    int max_batch, H, W;
    cnp_exec ex;            /* threads (resolved), AVX-512 allowed */
    cnp_conv_algo algo;
    cnp_isa isa;            /* the vector code the kernels run (never AUTO) */
    cnp_wino_prec wino;     /* bf16 plans: Winograd's precision (as asked) */
    unsigned flags;
    int bf16;               /* convolutions prepared in bf16 */
    int int8;               /* convolutions with a calibrated input in int8 */
    int n_int8;             /* how many convolutions run in int8 */
    double gflops;          /* per chip at the prepared size */
    float *slab;            /* activations + scratch (aligned) */
    float **bufs;           /* (n_bufs) pointers into slab */
    size_t *buf_floats;     /* (n_bufs) */
    int n_bufs;
    float *scratch;         /* conv scratch */
    size_t scratch_floats;
    float *tta_in;          /* (max_batch, C, H, W) TTA: transformed chips */
    float *tta_acc;         /* (max_batch, n_labels) TTA: probability sums */
} cnp_plan;

/* Per-node timings (cnp_model_profile); node_s NULL when off. */
typedef struct cnp_profile {
    double *node_s;         /* (n_nodes) seconds summed over the passes */
    long passes;
    int batch;              /* batch of the profiled passes (last seen) */
} cnp_profile;

/* int8 calibration (cnp_model_observe, observe.c): the least and the
 * greatest value of each activation a live convolution reads, over the
 * passes since observation began; vmin NULL when off. Per value, so it
 * survives re-preparing; freed by cnp_model_observe(on = 0) and
 * cnp_model_free(). */
typedef struct cnp_observe {
    float *vmin, *vmax;     /* (n_values), +inf / -inf until seen */
    long *pass_seen;        /* (n_values) the last pass that scanned the value */
    long passes;            /* forward passes observed */
} cnp_observe;

struct cnp_model {
    cnp_graph g;
    cnp_model_meta meta;    /* owned; cnp_meta_clear() */
    cnp_plan plan;
    cnp_profile prof;
    cnp_observe obs;
};

/* onnx_parser.c: adds a value named `name` (copied into the arena) and
 * returns its index, or -1 with ctx set. */
int cnp_value_add(cnp_ctx *ctx, cnp_model *m, const char *name);

/* graph.c */
cnp_status cnp_graph_fuse(cnp_ctx *ctx, cnp_model *m);
/* Shape pass at input H x W: dims of every live value, checks, GFLOPs. */
cnp_status cnp_graph_shapes(cnp_ctx *ctx, cnp_model *m, int H, int W);
/* "node 'NAME' (OP)" for messages, written into buf (size bytes); returns
 * buf. */
const char *cnp_node_desc(const cnp_node *nd, char *buf, size_t size);

/* plan.c */
void cnp_model_unprepare(cnp_model *m);

/* forward.c: one forward pass of n chips (n, C, H, W) into probabilities
 * (n, n_labels), both the caller's; no argument checks (see
 * cnp_model_forward). */
cnp_status cnp_forward_run(cnp_ctx *ctx, cnp_model *m, const float *input, int n, float *probs);

/* observe.c: with observation on, the range of value v's n chips (its
 * buffer x, n * C * H * W floats) joins the value's running range; a value
 * already scanned in this pass is not scanned again. Called by
 * cnp_forward_run before each live Conv (the caller checks obs.vmin). */
void cnp_observe_value(cnp_model *m, int v, const float *x, int n);
/* observe.c: a pass begins (counts passes; called when obs.vmin is set). */
void cnp_observe_pass(cnp_model *m);

/* info.c: architecture guess from the fused graph (arena string). */
cnp_status cnp_model_describe(cnp_ctx *ctx, cnp_model *m);

#endif
