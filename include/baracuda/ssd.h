/* ssd.h - (being written) Included by baracuda.h. */
#ifndef BARACUDA_SSD_H
#define BARACUDA_SSD_H
#endif
