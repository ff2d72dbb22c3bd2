// Prints figures, never pass/fail (see bench/README.md):
//  1. evaluations per second of a five-predicate Filter on a realistic change event;
//  2. routing cost per event through a SubscriptionIndex holding 1 000 000
//     documentKey._id subscriptions, against an empty index.
//
//   bench_filter [subscriptions]   (default 1000000)

#include "engine/SubscriptionIndex.h"
#include "filter/DocumentIndex.h"
#include "filter/Filter.h"

#include <QCoreApplication>
#include <QFile>
#include <QRandomGenerator>

#include <cstdio>
#include <ctime>

using namespace tw;
// Thread CPU time, not wall time: the build machines are shared, and time spent
// descheduled is not time spent filtering.
struct Clock {
    using time_point = double;
    static double now() {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
    }
};

static double seconds(Clock::time_point since) {
    return Clock::now() - since;
}

static QString oidHex(quint32 n) {
    return QStringLiteral("65a1b2c3d4e5f607%1").arg(n, 8, 16, QLatin1Char('0'));
}

static ChangeEvent orderEvent(quint32 key, qint64 seq) {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("shop-db"));
    e.setNs({QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(Operation::Update);
    e.setDocumentKey(Bson::fromJson(QStringLiteral(R"({"_id": {"$oid": "%1"}})").arg(oidHex(key)).toUtf8()));
    e.setUpdateDescription(ChangeEvent::makeUpdateDescription(
        Bson::fromJson(R"({"status": "paid", "updatedAt": {"$date": "2024-06-01T12:00:00Z"}})"), {}));
    e.setFullDocument(Bson::fromJson(QStringLiteral(R"({"_id": {"$oid": "%1"}, "number": "SO-104233",
        "customer": {"id": 88121, "name": "Ana Sousa", "email": "ana@example.org", "country": "PT"},
        "status": "paid", "currency": "EUR", "total": 184.9, "items": [{"sku": "A-1", "qty": 2, "price": 49.95},
        {"sku": "B-7", "qty": 1, "price": 85.0}], "tags": ["gift", "express"],
        "createdAt": {"$date": "2024-06-01T11:58:00Z"}, "updatedAt": {"$date": "2024-06-01T12:00:00Z"}})")
                                         .arg(oidHex(key))
                                         .toUtf8()));
    e.setResumeToken(Bson::fromJson(R"({"_data": "8266A1B2C3000000012B022C0100296E5A1004"})"));
    e.setClusterTime({1717243200, 1});
    e.setWallTimeMs(1717243200000);
    e.finalize(seq);
    return e;
}

static long residentMiB() {
    QFile statm(QStringLiteral("/proc/self/statm"));
    if (!statm.open(QIODevice::ReadOnly))
        return -1;
    const QList<QByteArray> fields = statm.readAll().split(' ');
    return fields.size() > 1 ? fields[1].toLong() * 4096 / (1024 * 1024) : -1;
}

static void benchEvaluation() {
    const ChangeEvent event = orderEvent(7, 1);
    const QByteArray text =
        R"({"operationType": {"$in": ["insert", "update", "replace"]}, "ns.coll": "orders",
        "fullDocument.total": {"$gte": 100}, "fullDocument.status": {"$ne": "cancelled"},
        "fullDocument.customer.country": "PT"})";
    QString error;
    const Filter filter = Filter::compile(text, &error);
    if (!filter.isValid()) {
        std::printf("filter does not compile: %s\n", qPrintable(error));
        return;
    }
    const Bson document = event.document();
    bson_t view;
    document.view(&view);
    std::printf("event: %zu bytes of BSON; filter: %s\n", document.size(), filter.json().constData());

    // Warm-up, and a check that the figure is about a matching evaluation.
    if (!filter.matches(&view)) {
        std::printf("filter unexpectedly does not match\n");
        return;
    }
    const int rounds = 5;
    const long perRound = 2'000'000;
    double best = 1e9;
    long matched = 0;
    for (int r = 0; r < rounds; ++r) {
        const auto start = Clock::now();
        for (long i = 0; i < perRound; ++i)
            matched += filter.matches(&view);
        best = std::min(best, seconds(start));
    }
    std::printf(
        "filter.matches(bson_t*), 5 predicates: %.2f M evaluations/s (%.0f ns each; best of %d x %ld)\n",
        perRound / best / 1e6, best / perRound * 1e9, rounds, perRound);

    best = 1e9;
    for (int r = 0; r < rounds; ++r) {
        const auto start = Clock::now();
        for (long i = 0; i < perRound; ++i)
            matched += filter.matches(event);
        best = std::min(best, seconds(start));
    }
    std::printf("filter.matches(ChangeEvent), finalized event: %.2f M evaluations/s (%.0f ns each)\n",
                perRound / best / 1e6, best / perRound * 1e9);

    // Routing with several filters to evaluate indexes each event once (DocumentIndex)
    // and every filter probes that index: the per-evaluation figure, then the price
    // of the index, paid once per event.
    const DocumentIndex index(&view);
    best = 1e9;
    for (int r = 0; r < rounds; ++r) {
        const auto start = Clock::now();
        for (long i = 0; i < perRound; ++i)
            matched += filter.matches(index);
        best = std::min(best, seconds(start));
    }
    std::printf("filter.matches(DocumentIndex), 5 predicates: %.2f M evaluations/s (%.0f ns each)\n",
                perRound / best / 1e6, best / perRound * 1e9);
    best = 1e9;
    DocumentIndex reused;
    const long builds = perRound / 4;
    for (int r = 0; r < rounds; ++r) {
        const auto start = Clock::now();
        for (long i = 0; i < builds; ++i) {
            reused.rebuild(&view);
            matched += reused.usable();
        }
        best = std::min(best, seconds(start));
    }
    std::printf("DocumentIndex of the event, built once per event: %.0f ns\n", best / builds * 1e9);
    if (matched != 3L * rounds * perRound + rounds * builds)
        std::printf("unexpected match count %ld\n", matched);
}

static double routeNsPerEvent(const SubscriptionIndex& index, const ChangeEventList& events,
                              long* routedOut) {
    const int rounds = 5;
    double best = 1e9;
    long routed = 0;
    for (int r = 0; r < rounds; ++r) {
        routed = 0;
        const auto start = Clock::now();
        for (const ChangeEvent& e : events)
            routed += index.route(e).size();
        best = std::min(best, seconds(start));
    }
    *routedOut = routed;
    return best / double(events.size()) * 1e9;
}

static void benchRouting(int subscriptionCount) {
    const long rssBefore = residentMiB();
    SubscriptionIndex index;
    const auto buildStart = Clock::now();
    for (int i = 0; i < subscriptionCount; ++i) {
        Subscription s;
        s.id = QStringLiteral("s%1").arg(i);
        s.namespaces = {{QStringLiteral("shop-db"), {QStringLiteral("shop"), QStringLiteral("orders")}}};
        s.filter = Filter::compile(
            QStringLiteral(R"({"documentKey._id": {"$oid": "%1"}})").arg(oidHex(quint32(i) * 2)).toUtf8());
        index.insert(s);
    }
    const double buildSeconds = seconds(buildStart);
    std::printf(
        "\nindex of %d documentKey._id subscriptions: built in %.1f s (%.1f us each), +%ld MiB resident\n",
        subscriptionCount, buildSeconds, buildSeconds / subscriptionCount * 1e6, residentMiB() - rssBefore);

    // Even keys are subscribed, odd keys are not: half the events reach one subscription.
    QRandomGenerator rng(7);
    ChangeEventList events;
    const int eventCount = 20'000;
    for (int i = 0; i < eventCount; ++i)
        events.append(orderEvent(rng.bounded(quint32(subscriptionCount) * 2), i + 1));

    // Baseline: the same kind of subscription, but only one, so the hash table and the
    // entries stay in cache; the difference is what a million of them add.
    SubscriptionIndex small;
    small.insert(*index.find(QStringLiteral("s0")));
    long routed = 0;
    const double one = routeNsPerEvent(small, events, &routed);
    const double full = routeNsPerEvent(index, events, &routed);
    std::printf("route(), 1 exact-match subscription: %.0f ns/event\n", one);
    std::printf("route(), %d exact-match subscriptions: %.0f ns/event (%ld of %d events routed)\n",
                subscriptionCount, full, routed, eventCount);
    std::printf("added by a million subscriptions: %.0f ns/event\n", full - one);

    // The same index plus 100 subscriptions that must be evaluated one by one.
    for (int i = 0; i < 100; ++i) {
        Subscription s;
        s.id = QStringLiteral("range%1").arg(i);
        s.filter =
            Filter::compile(QStringLiteral(R"({"fullDocument.total": {"$gt": %1}})").arg(1000 + i).toUtf8());
        index.insert(s);
    }
    const double mixed = routeNsPerEvent(index, events, &routed);
    std::printf("route(), plus 100 evaluated range filters: %.0f ns/event (%.1f ns per evaluated filter)\n",
                mixed, (mixed - full) / 100);
}

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const int subscriptions = argc > 1 ? QByteArray(argv[1]).toInt() : 1'000'000;
#ifdef NDEBUG
    std::printf("bench_filter (Release; times are thread CPU time)\n");
#else
    std::printf("bench_filter (Debug build: figures are not representative)\n");
#endif
    benchEvaluation();
    if (subscriptions > 0)
        benchRouting(subscriptions);
    return 0;
}
