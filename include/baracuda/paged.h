/* paged.h - (being written) Included by baracuda.h. */
#ifndef BARACUDA_PAGED_H
#define BARACUDA_PAGED_H
#endif
