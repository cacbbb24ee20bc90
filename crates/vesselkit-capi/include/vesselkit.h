/* vesselkit C ABI. Research use only. Not for clinical decision making.
 *
 * Every function returns a status code (VK_OK on success). On failure, vk_last_error() gives a
 * message naming the file or argument at fault, valid until the next call on the same thread.
 * Strings returned through `char **` are owned by the caller and freed with vk_free_string().
 * No Rust panic crosses this boundary: it is reported as VK_ERR_INTERNAL.
 */
#ifndef VESSELKIT_H
#define VESSELKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vk_status {
    VK_OK = 0,
    VK_ERR_INVALID_ARGUMENT = 1, /* null pointer, bad size, NaN, zero spacing... */
    VK_ERR_READ = 2,             /* the file cannot be read or decoded */
    VK_ERR_UNSUPPORTED = 3,      /* valid file, unsupported feature (e.g. transfer syntax) */
    VK_ERR_ANALYSIS = 4,         /* the analysis rejected the input */
    VK_ERR_INTERNAL = 5          /* a bug: please report it with the message */
} vk_status;

/* Library version, e.g. "0.1.0" (static string, do not free). */
const char *vk_version(void);

/* The last error message on this thread ("" when none; do not free). */
const char *vk_last_error(void);

/* Read a DICOM/PNG/TIFF/NPY file and write its metadata as JSON to *out_json.
 * pixel_spacing_mm <= 0 keeps the file's own calibration. */
vk_status vk_info_file(const char *path, double pixel_spacing_mm, char **out_json);

/* Analyse a file (single frame or cine) and write the report (schema vesselkit.report/1)
 * as JSON to *out_json. pixel_spacing_mm <= 0 keeps the file's own calibration. */
vk_status vk_analyze_file(const char *path, double pixel_spacing_mm, char **out_json);

/* Analyse frames held in memory: `pixels` is float32 [frames][rows][cols], row-major.
 * pixel_spacing_mm <= 0 means uncalibrated (values then in px). */
vk_status vk_analyze_pixels(const float *pixels, size_t frames, size_t rows, size_t cols,
                            double pixel_spacing_mm, char **out_json);

/* The same with options: `options_json` is NULL, "" or a JSON object with any of
 *   "rules":     path of a lesion rule table (.toml, else JSON; defaults in rules/)
 *   "segmenter": "filters" (default), "unet-dca1", or the path of a weight file
 *   "frame":     index of the cine frame to measure (default: the best-opacified one)
 *   "catheter":  {"p0": [row, col], "p1": [row, col], "french": 6, "frame": 0}: take the
 *                scale from a contrast-empty catheter marked along its axis (points in px, at
 *                least 4 px apart; "frame" the one it was marked on, default 0). It replaces
 *                pixel_spacing_mm and the file's own scale; the report's calibration source
 *                is then "catheter". No catheter edges where marked is VK_ERR_ANALYSIS.
 * e.g. {"segmenter": "unet-dca1", "frame": 12}. An unknown key, a wrong type, an unreadable
 * file or a frame past the end is VK_ERR_INVALID_ARGUMENT with a message naming it. */
vk_status vk_analyze_file_with(const char *path, double pixel_spacing_mm, const char *options_json,
                               char **out_json);
vk_status vk_analyze_pixels_with(const float *pixels, size_t frames, size_t rows, size_t cols,
                                 double pixel_spacing_mm, const char *options_json,
                                 char **out_json);

/* Free a string returned by this library (NULL is ignored). */
void vk_free_string(char *s);

#ifdef __cplusplus
}
#endif
#endif /* VESSELKIT_H */
