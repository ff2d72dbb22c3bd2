#include "FeedExporter.h"

#include <QDateTime>

namespace tw::ui {

namespace {

QByteArray csvField(const QByteArray& value) {
    if (!value.contains(',') && !value.contains('"') && !value.contains('\n') && !value.contains('\r'))
        return value;
    QByteArray quoted = value;
    quoted.replace("\"", "\"\"");
    return '"' + quoted + '"';
}

} // namespace

QByteArray FeedExporter::csvHeader() {
    return "seq,time,source,operation,namespace,documentKey,updateDescription,fullDocument\r\n";
}

QByteArray FeedExporter::csvRow(const ChangeEvent& e) {
    QByteArray row;
    row += QByteArray::number(e.seq());
    row += ',';
    if (e.wallTimeMs() > 0)
        row += QDateTime::fromMSecsSinceEpoch(e.wallTimeMs(), Qt::UTC).toString(Qt::ISODateWithMs).toUtf8();
    row += ',' + csvField(e.sourceId().toUtf8());
    row += ',' + csvField(e.operationType());
    row += ',' + csvField(e.ns().toString().toUtf8());
    row += ',' + csvField(e.documentKey().isAbsent() ? QByteArray() : e.documentKey().toJson());
    row += ',' + csvField(e.updateDescription().isAbsent() ? QByteArray() : e.updateDescription().toJson());
    row += ',' + csvField(e.fullDocument().isAbsent() ? QByteArray() : e.fullDocument().toJson());
    row += "\r\n"; // RFC 4180
    return row;
}

FeedExporter::Format FeedExporter::formatForPath(const QString& path) {
    return path.endsWith(QLatin1String(".csv"), Qt::CaseInsensitive) ? Format::Csv : Format::Ndjson;
}

bool FeedExporter::write(const ChangeEventList& events, Format format, QIODevice* out,
                         std::atomic<qint64>* progress, const std::atomic<bool>* cancel, QString* error,
                         const EventShape& shape) {
    const auto failed = [&] {
        if (error)
            *error = out->errorString();
        return false;
    };
    if (format == Format::Csv && out->write(csvHeader()) < 0)
        return failed();
    QByteArray chunk;
    qint64 done = 0;
    for (const ChangeEvent& e : events) {
        if (cancel && cancel->load(std::memory_order_relaxed)) {
            if (error)
                *error = QObject::tr("Cancelled");
            return false;
        }
        if (format == Format::Csv) {
            chunk += csvRow(e);
        } else {
            chunk += shape.namedJson(e);
            chunk += '\n';
        }
        ++done;
        // Write in ~1 MiB pieces: one syscall per event is what makes exports slow.
        if (chunk.size() > (1 << 20)) {
            if (out->write(chunk) < 0)
                return failed();
            chunk.clear();
            if (progress)
                progress->store(done, std::memory_order_relaxed);
        }
    }
    if (!chunk.isEmpty() && out->write(chunk) < 0)
        return failed();
    if (progress)
        progress->store(done, std::memory_order_relaxed);
    return true;
}

} // namespace tw::ui
