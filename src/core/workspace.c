/* workspace.c - carving the caller's workspace into aligned pieces. */
#include "core/core.h"

void *bk_carve(bk_carver *c, size_t bytes)
{
    if (c->offset > SIZE_MAX - BK_WS_ALIGN || bytes == SIZE_MAX) {
        c->offset = SIZE_MAX;
        return NULL;
    }
    size_t start = (c->offset + (BK_WS_ALIGN - 1)) & ~(size_t)(BK_WS_ALIGN - 1);
    c->offset = bytes > SIZE_MAX - 1 - start ? SIZE_MAX : start + bytes;
    return c->base ? (void *)(c->base + start) : NULL;
}

bk_status bk_check_workspace(const char *op, const bk_workspace *ws, size_t need)
{
    if (need == 0)
        return BK_STATUS_SUCCESS;
    if (need == SIZE_MAX)
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: the workspace this problem needs does not fit in size_t (workspace_size is SIZE_MAX)", op);
    if (ws == NULL || ws->data == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: workspace is NULL, expected %zu bytes", op, need);
    if (ws->bytes < need)
        return bk_fail(BK_STATUS_WORKSPACE_TOO_SMALL, "%s: workspace is %zu bytes, expected %zu", op,
                       ws->bytes, need);
    return BK_STATUS_SUCCESS;
}
