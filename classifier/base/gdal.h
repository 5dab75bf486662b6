/* base/gdal.h -- the one bridge between GDAL's error handling and cnp_ctx.
 *
 * GDAL reports errors through CPLError: canopy never lets them print; it
 * runs GDAL calls in a quiet session and copies GDAL's last message into
 * its own (file, what is wrong, what to do):
 *
 *   cnp_gdal_quiet_begin();
 *   ds = GDALOpenEx(path, ...);
 *   if (!ds) st = cnp_error(ctx, CNP_ERR_IO, "%s: ... (%s)", path, cnp_gdal_msg());
 *   cnp_gdal_quiet_end();
 */
#ifndef CNP_BASE_GDAL_H
#define CNP_BASE_GDAL_H

#include "base/base.h"

/* GDAL's last error message of this thread, or "no further detail from
 * GDAL". Valid until the next GDAL call. */
const char *cnp_gdal_msg(void);

/* Forgets GDAL's last error of this thread (before a call whose failure is
 * then reported with cnp_gdal_msg()). */
void cnp_gdal_reset(void);

/* A quiet session: GDAL's errors are not printed (pushes CPLQuietErrorHandler
 * on this thread's stack) and the last error is reset; end pops it. Calls
 * nest. */
void cnp_gdal_quiet_begin(void);
void cnp_gdal_quiet_end(void);

#endif
