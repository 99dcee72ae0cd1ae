/*
 * What nDPI 4.2 offers no function for, compiled against the installed
 * header so that the Rust side never hard-codes a struct offset:
 * the flow's classification confidence, and the sizes and values the
 * Rust tests compare their hand-written declarations with.
 */
#include <ndpi_api.h>

/* How the flow's protocol was found (ndpi_confidence_t). */
unsigned int nemea_ndpi_flow_confidence(const struct ndpi_flow_struct *flow)
{
    return (unsigned int)flow->confidence;
}

/* The API version of the header this was compiled with (ndpi_get_api_version()
 * of the library loaded at run time must agree). */
unsigned int nemea_ndpi_header_api_version(void)
{
    return NDPI_API_VERSION;
}

/* sizeof(NDPI_PROTOCOL_BITMASK), for the Rust declaration's test. */
unsigned int nemea_ndpi_bitmask_size(void)
{
    return (unsigned int)sizeof(NDPI_PROTOCOL_BITMASK);
}

/* An ndpi_protocol returned by value, for the test of the Rust declaration's
 * layout and return convention. */
ndpi_protocol nemea_ndpi_protocol_probe(void)
{
    ndpi_protocol p;
    p.master_protocol = 0x1234;
    p.app_protocol = 0x5678;
    p.category = (ndpi_protocol_category_t)9;
    return p;
}
