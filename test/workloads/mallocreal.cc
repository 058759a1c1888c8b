// Malloc-heavy application code for `make bench` (heap summary overhead
// beside mallocbench's pure allocator loop):
//   mallocreal [ROUNDS] [THREADS]
// Each thread, ROUNDS times, builds an index of 200 000 synthetic records
// the way application code does: keys of 20 to 80 characters (past the
// small-string buffer, so each is a heap block) in a
// std::unordered_map<std::string, std::vector<unsigned>>, values appended
// as they come, then the keys sorted into a std::vector, then everything
// dropped. Prints a checksum.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <string>
#include <unordered_map>
#include <vector>

static long rounds = 10;

static void *worker(void *arg)
{
    unsigned long long x = 0x9e3779b97f4a7c15ull * (unsigned long long)((long)arg + 1);
    unsigned long sum = 0;
    for (long r = 0; r < rounds; r++) {
        std::unordered_map<std::string, std::vector<unsigned>> index;
        for (int i = 0; i < 200000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            std::string key = "record/" + std::to_string(x % 50000) + "/";
            key.append(13 + (size_t)((x >> 24) % 60), (char)('a' + (x >> 40) % 26));
            index[key].push_back((unsigned)i);
        }
        std::vector<std::string> keys;
        keys.reserve(index.size());
        for (auto &kv : index)
            keys.push_back(kv.first);
        std::sort(keys.begin(), keys.end());
        sum += keys.size() + keys.front().size() + index[keys.back()].size();
    }
    return (void *)sum;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atol(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1 || threads > 64)
        threads = 1;
    pthread_t t[64];
    unsigned long total = 0;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(long)i);
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (unsigned long)r;
    }
    printf("mallocreal checksum %lu\n", total);
    return 0;
}
