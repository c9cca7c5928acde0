/* Per-worker counters: each thread bumps its own block; the sum sees all
 * of them, including blocks of threads that have ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "../../src/core/counters.h"

#define BUMPS 100000

static void *worker(void *arg)
{
    (void)arg;
    if (pv_counters_register() != 0)
        return NULL;
    for (int i = 0; i < BUMPS; i++)
        pv_count(PV_CTR_REQUESTS);
    pv_count(PV_CTR_STATUS_5XX);
    return arg;
}

static void test_sum_of_every_worker(void **state)
{
    (void)state;
    uint64_t before[PV_CTR__COUNT], after[PV_CTR__COUNT];
    pv_counters_sum(before);
    /* counts of a thread without a block go nowhere anybody reads */
    pv_count(PV_CTR_REQUESTS);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)1), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_non_null(rv);
    }
    pv_counters_sum(after);
    assert_int_equal(after[PV_CTR_REQUESTS] - before[PV_CTR_REQUESTS], 4 * BUMPS);
    assert_int_equal(after[PV_CTR_STATUS_5XX] - before[PV_CTR_STATUS_5XX], 4);
    assert_int_equal(after[PV_CTR_STATUS_2XX], before[PV_CTR_STATUS_2XX]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_of_every_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
