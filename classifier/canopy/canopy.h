/* canopy/canopy.h -- libcanopy, the public API (umbrella header).
 *
 *   #include <canopy/canopy.h>      cc prog.c $(pkg-config --cflags --libs canopy)
 *
 * status.h    cnp_status, cnp_ctx, cnp_progress_fn, cnp_version()
 * predict.h   image chips -> probabilities and tags (canopy predict)
 * evaluate.h  labelled chips -> F2, per-label scores, thresholds (evaluate)
 * calibrate.h sample chips -> the int8 ranges in a copy of the model (calibrate)
 * classify.h  whole scenes: options, prepared model, scene lists,
 *             cnp_classify_scene() and its result object
 */
#ifndef CNP_CANOPY_H
#define CNP_CANOPY_H

#include "canopy/status.h"
#include "canopy/classify.h"
#include "canopy/predict.h"
#include "canopy/evaluate.h"
#include "canopy/calibrate.h"

#endif
