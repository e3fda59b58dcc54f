/* attention.h - (being written) Included by baracuda.h. */
#ifndef BARACUDA_ATTENTION_H
#define BARACUDA_ATTENTION_H
#endif
