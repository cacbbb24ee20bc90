/* A C caller of the vesselkit ABI: version, an error path, and an analysis of a flat frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vesselkit.h"

int main(void) {
    printf("version %s\n", vk_version());
    char *json = NULL;
    vk_status st = vk_analyze_file(NULL, 0.0, &json);
    printf("null path -> %d (%s)\n", (int)st, vk_last_error());
    if (st != VK_ERR_INVALID_ARGUMENT) return 1;

    size_t rows = 32, cols = 32;
    float *px = malloc(rows * cols * sizeof(float));
    for (size_t i = 0; i < rows * cols; i++) px[i] = 1000.0f;
    st = vk_analyze_pixels(px, 1, rows, cols, 0.2, &json);
    if (st != VK_OK) { printf("analyze failed: %s\n", vk_last_error()); free(px); return 2; }
    if (strstr(json, "vesselkit.report/1")) printf("schema ok\n");
    vk_free_string(json);

    st = vk_analyze_pixels_with(px, 1, rows, cols, 0.2, "{\"frame\": 0, \"segmenter\": \"filters\"}", &json);
    if (st != VK_OK) { printf("analyze with options failed: %s\n", vk_last_error()); free(px); return 3; }
    if (strstr(json, "\"frame_used\": 0")) printf("options ok\n");
    vk_free_string(json);
    st = vk_analyze_pixels_with(px, 1, rows, cols, 0.2, "{\"frames\": 0}", &json);
    printf("bad option -> %d (%s)\n", (int)st, vk_last_error());
    free(px);
    return 0;
}
