/* kvcache.h - (being written) Included by baracuda.h. */
#ifndef BARACUDA_KVCACHE_H
#define BARACUDA_KVCACHE_H
#endif
