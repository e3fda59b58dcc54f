/* workspace.c - carving the caller's workspace into aligned pieces. */
#include "core/core.h"

void *bk_carve(bk_carver *c, size_t bytes)
{
    size_t start = (c->offset + (BK_WS_ALIGN - 1)) & ~(size_t)(BK_WS_ALIGN - 1);
    c->offset = start + bytes;
    return c->base ? (void *)(c->base + start) : NULL;
}

bk_status bk_check_workspace(const char *op, const bk_workspace *ws, size_t need)
{
    if (need == 0)
        return BK_STATUS_SUCCESS;
    if (ws == NULL || ws->data == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: workspace is NULL, expected %zu bytes", op, need);
    if (ws->bytes < need)
        return bk_fail(BK_STATUS_WORKSPACE_TOO_SMALL, "%s: workspace is %zu bytes, expected %zu", op,
                       ws->bytes, need);
    return BK_STATUS_SUCCESS;
}
