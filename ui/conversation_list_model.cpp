#include "ui/conversation_list_model.h"

#include <QFont>

namespace tidelane::ui {

ConversationListModel::ConversationListModel(ConversationStore* store, QObject* parent)
    : QAbstractListModel(parent), store_(store) {
  connect(store_, &ConversationStore::conversationsChanged, this, &ConversationListModel::reload);
  reload();
}

ConversationListModel::Group ConversationListModel::groupFor(const ConversationInfo& c,
                                                             const QDateTime& now) {
  if (c.pinned) return Group::Pinned;
  const QDate today = now.toLocalTime().date();
  const QDate day = c.updated.toLocalTime().date();
  if (day >= today) return Group::Today;
  if (day == today.addDays(-1)) return Group::Yesterday;
  if (day >= today.addDays(-7)) return Group::Previous7Days;
  return Group::Older;
}

QString ConversationListModel::groupName(Group group) {
  switch (group) {
    case Group::Pinned:
      return tr("Pinned");
    case Group::Today:
      return tr("Today");
    case Group::Yesterday:
      return tr("Yesterday");
    case Group::Previous7Days:
      return tr("Previous 7 days");
    case Group::Older:
      return tr("Older");
    case Group::Results:
      break;
  }
  return tr("Results");
}

void ConversationListModel::setFilter(const QString& text) {
  if (text == filter_) return;
  filter_ = text;
  reload();
}

void ConversationListModel::setNow(const QDateTime& now) {
  now_ = now;
  reload();
}

void ConversationListModel::reload() {
  const QDateTime now = now_.isValid() ? now_ : QDateTime::currentDateTime();
  const bool searching = !filter_.trimmed().isEmpty();
  const auto conversations = searching ? store_->search(filter_) : store_->conversations();
  QList<Row> rows;
  // The store gives pinned first, then newest first, so groups come out in order.
  for (const auto& c : conversations) {
    const Group g = searching ? Group::Results : groupFor(c, now);
    if (rows.isEmpty() || rows.back().group != g) rows.append(Row{true, g, {}});
    rows.append(Row{false, g, c});
  }
  beginResetModel();
  rows_ = std::move(rows);
  endResetModel();
}

int ConversationListModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

QVariant ConversationListModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rows_.size()) return {};
  const Row& r = rows_[index.row()];
  switch (role) {
    case Qt::DisplayRole:
      if (r.header) return groupName(r.group);
      return r.info.title.isEmpty() ? tr("New chat") : r.info.title;
    case Qt::EditRole:
      return r.info.title;
    case Qt::FontRole: {
      if (!r.header) return {};
      QFont f;
      f.setBold(true);
      return f;
    }
    case Qt::ToolTipRole:
      return r.header ? QVariant()
                      : QVariant(r.info.snippet.isEmpty() ? r.info.title : r.info.snippet);
    case Qt::AccessibleTextRole:
      if (r.header) return tr("%1 conversations").arg(groupName(r.group));
      return r.info.pinned ? tr("%1, pinned").arg(r.info.title) : r.info.title;
    case IdRole:
      return r.info.id;
    case IsHeaderRole:
      return r.header;
    case PinnedRole:
      return r.info.pinned;
    case GroupRole:
      return QVariant::fromValue(r.group);
    case SnippetRole:
      return r.info.snippet;
    default:
      return {};
  }
}

bool ConversationListModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (role != Qt::EditRole || !index.isValid() || rows_[index.row()].header) return false;
  return store_->rename(rows_[index.row()].info.id, value.toString());
}

Qt::ItemFlags ConversationListModel::flags(const QModelIndex& index) const {
  if (!index.isValid()) return Qt::NoItemFlags;
  if (rows_[index.row()].header) return Qt::ItemIsEnabled;
  return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsEditable;
}

int ConversationListModel::rowOf(qint64 id) const {
  for (int i = 0; i < rows_.size(); ++i) {
    if (!rows_[i].header && rows_[i].info.id == id) return i;
  }
  return -1;
}

qint64 ConversationListModel::idAt(int row) const {
  return row >= 0 && row < rows_.size() && !rows_[row].header ? rows_[row].info.id : 0;
}

bool ConversationListModel::togglePinned(qint64 id) {
  const int row = rowOf(id);
  return row >= 0 && store_->setPinned(id, !rows_[row].info.pinned);
}

bool ConversationListModel::remove(qint64 id) {
  return store_->remove(id);
}

bool ConversationListModel::undoRemove(qint64 id) {
  return store_->undoRemove(id);
}

bool ConversationListModel::purgeRemoved() {
  return store_->purgeRemoved();
}

}  // namespace tidelane::ui
