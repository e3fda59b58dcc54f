/* status.c - status names and the thread-local last-error sentence. */
#include "core/core.h"

#include <stdio.h>

static _Thread_local char bk_error_text[512];

const char *bk_status_name(bk_status status)
{
    switch (status) {
    case BK_STATUS_SUCCESS: return "BK_STATUS_SUCCESS";
    case BK_STATUS_INVALID_PROBLEM: return "BK_STATUS_INVALID_PROBLEM";
    case BK_STATUS_UNSUPPORTED: return "BK_STATUS_UNSUPPORTED";
    case BK_STATUS_BUFFER_TOO_SMALL: return "BK_STATUS_BUFFER_TOO_SMALL";
    case BK_STATUS_WORKSPACE_TOO_SMALL: return "BK_STATUS_WORKSPACE_TOO_SMALL";
    case BK_STATUS_OUT_OF_RANGE: return "BK_STATUS_OUT_OF_RANGE";
    case BK_STATUS_DEVICE_ERROR: return "BK_STATUS_DEVICE_ERROR";
    case BK_STATUS_NO_DEVICE: return "BK_STATUS_NO_DEVICE";
    }
    return "BK_STATUS_UNKNOWN";
}

const char *bk_last_error(void)
{
    return bk_error_text;
}

void bk_clear_error(void)
{
    bk_error_text[0] = '\0';
}

bk_status bk_fail(bk_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bk_error_text, sizeof bk_error_text, fmt, ap);
    va_end(ap);
    return status;
}
