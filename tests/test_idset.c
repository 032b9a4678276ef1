/* The job-id set: duplicates found with the line of the first, growth
 * past many ids, the empty id. */
#include <stdio.h>

#include "borg/idset.h"
#include "check.h"

int main(void)
{
    borg_idset *s;
    borg_err err = {0};
    CHECK(idset_create(&s, &err) == BORG_OK);
    int dup = -1;
    long first = -1;
    CHECK(idset_add(s, "a", 1, &dup, &first, &err) == BORG_OK && dup == 0);
    CHECK(idset_add(s, "b", 2, &dup, &first, &err) == BORG_OK && dup == 0);
    CHECK(idset_add(s, "a", 3, &dup, &first, &err) == BORG_OK && dup == 1 && first == 1);
    CHECK(idset_add(s, "", 4, &dup, &first, &err) == BORG_OK && dup == 0);
    CHECK(idset_add(s, "", 5, &dup, &first, &err) == BORG_OK && dup == 1 && first == 4);
    char id[32];
    int fresh = 1;
    for (long i = 0; i < 200000; i++) {
        snprintf(id, sizeof id, "job-%ld", i);
        CHECK(idset_add(s, id, 10 + i, &dup, &first, &err) == BORG_OK);
        fresh &= dup == 0;
    }
    CHECK(fresh);
    int again = 1;
    for (long i = 0; i < 200000; i += 997) {
        snprintf(id, sizeof id, "job-%ld", i);
        CHECK(idset_add(s, id, 0, &dup, &first, &err) == BORG_OK);
        again &= dup == 1 && first == 10 + i;
    }
    CHECK(again);
    idset_free(s);
    return check_report();
}
