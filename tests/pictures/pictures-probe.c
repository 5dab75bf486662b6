/* pictures-probe -- the pictures module alone, for the tests:
 *   pictures-probe quicklook OUTDIR NAME [OUT.png [SIZE [ALERTS.geojson]]]
 *   pictures-probe stac OUTDIR NAME
 *   pictures-probe failure OUTDIR NAME SCENE STATUS MESSAGE
 *   pictures-probe unfail OUTDIR NAME
 * Prints what was written as "key=value" lines; exit 0, 1 on error. */
#include "config.h"
#include "pictures/pictures.h"

#include <gdal.h>
#include <ogr_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int quicklook(cnp_ctx *ctx, int argc, char **argv)
{
    cnp_scene_record *r = NULL;
    cnp_quicklook_params q;
    cnp_quicklook_info info;
    char out[4096];
    int rc = 1;

    if (cnp_scene_record_read(ctx, argv[2], argv[3], &r) != CNP_OK)
        return 1;
    cnp_scene_record_quicklook(r, &q);
    if (argc > 5)
        q.size = atoi(argv[5]);
    if (argc > 6)
        q.alerts = argv[6];
    if (argc > 4)
        snprintf(out, sizeof out, "%s", argv[4]);
    else
        snprintf(out, sizeof out, "%s/%s.quicklook.png", argv[2], argv[3]);
    if (cnp_quicklook_write(ctx, out, &q, &info) == CNP_OK) {
        printf("path=%s\nwidth=%d\nheight=%d\noverview=%d\nregions=%d\nalerts=%d\nseconds=%.3f\n",
               out, info.width, info.height, info.overview, info.n_regions, info.n_alerts,
               info.seconds);
        rc = 0;
    }
    cnp_scene_record_free(r);
    return rc;
}

static int stac(cnp_ctx *ctx, char **argv)
{
    cnp_scene_record *r = NULL;
    cnp_stac_item_params p;
    char out[4096], *id = NULL;
    int rc = 1;

    if (cnp_scene_record_read(ctx, argv[2], argv[3], &r) != CNP_OK ||
        !(id = cnp_stac_collection_id(ctx, argv[2])))
        goto cleanup;
    cnp_scene_record_stac(r, id, &p);
    snprintf(out, sizeof out, "%s/%s.stac.json", argv[2], argv[3]);
    if (cnp_stac_item_write(ctx, out, &p) == CNP_OK) {
        printf("path=%s\ncollection=%s\n", out, id);
        rc = 0;
    }
cleanup:
    free(id);
    cnp_scene_record_free(r);
    return rc;
}

int main(int argc, char **argv)
{
    cnp_ctx ctx;
    int rc = 2;

    GDALAllRegister();
    cnp_ctx_clear(&ctx);
    if (argc >= 4 && !strcmp(argv[1], "quicklook"))
        rc = quicklook(&ctx, argc, argv);
    else if (argc == 4 && !strcmp(argv[1], "stac"))
        rc = stac(&ctx, argv);
    else if (argc == 7 && !strcmp(argv[1], "failure"))
        rc = cnp_failure_write(&ctx, argv[2], argv[3], argv[4], argv[5], argv[6]) != CNP_OK;
    else if (argc == 4 && !strcmp(argv[1], "unfail")) {
        cnp_failure_remove(argv[2], argv[3]);
        rc = 0;
    } else
        fprintf(stderr, "usage: pictures-probe quicklook|stac|failure|unfail OUTDIR NAME ...\n");
    if (rc == 1)
        fprintf(stderr, "pictures-probe: %s\n", ctx.msg);
    return rc;
}
