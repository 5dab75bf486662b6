/* gdal.c -- GDAL error bridge (base/gdal.h). */
#include "config.h"
#include "base/gdal.h"

#include <cpl_error.h>

const char *cnp_gdal_msg(void)
{
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : "no further detail from GDAL";
}

void cnp_gdal_reset(void)
{
    CPLErrorReset();
}

void cnp_gdal_quiet_begin(void)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
}

void cnp_gdal_quiet_end(void)
{
    CPLPopErrorHandler();
}
