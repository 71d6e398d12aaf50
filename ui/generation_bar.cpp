#include "ui/generation_bar.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QMenu>
#include <QSpinBox>
#include <QToolButton>
#include <functional>

namespace tidelane::ui {
namespace {

const QString kNone = QStringLiteral("none");
const QString kCustom = QStringLiteral("custom");

// A combo box that says when its list is opened, so the model list can be refreshed then.
class OpeningCombo : public QComboBox {
 public:
  using QComboBox::QComboBox;
  std::function<void()> opening;
  void showPopup() override {
    if (opening) opening();
    QComboBox::showPopup();
  }
};

QLabel* label(const QString& text, QWidget* buddy, QWidget* parent) {
  auto* l = new QLabel(text, parent);
  l->setBuddy(buddy);
  return l;
}

}  // namespace

GenerationBar::GenerationBar(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("generationBar"));
  setAccessibleName(tr("Conversation settings"));
  preset_ = new QComboBox(this);
  preset_->setObjectName(QStringLiteral("presetPicker"));
  preset_->setAccessibleName(tr("System prompt preset"));
  preset_->setToolTip(tr("The instructions sent before the conversation"));
  auto* model = new OpeningCombo(this);
  model->opening = [this] { emit modelsWanted(); };
  model_ = model;
  model_->setObjectName(QStringLiteral("modelPicker"));
  model_->setAccessibleName(tr("Model"));
  model_->setMinimumContentsLength(12);
  model_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  temperature_ = new QDoubleSpinBox(this);
  temperature_->setObjectName(QStringLiteral("temperature"));
  temperature_->setAccessibleName(tr("Temperature"));
  temperature_->setToolTip(tr("Higher is more varied, 0 always picks the likeliest word"));
  temperature_->setRange(-0.1, 2.0);
  temperature_->setSingleStep(0.1);
  temperature_->setDecimals(2);
  temperature_->setSpecialValueText(tr("Default"));
  topP_ = new QDoubleSpinBox(this);
  topP_->setObjectName(QStringLiteral("topP"));
  topP_->setAccessibleName(tr("Top-p"));
  topP_->setToolTip(tr("Sample only from the likeliest words that make up this share"));
  topP_->setRange(-0.05, 1.0);
  topP_->setSingleStep(0.05);
  topP_->setDecimals(2);
  topP_->setSpecialValueText(tr("Default"));
  maxTokens_ = new QSpinBox(this);
  maxTokens_->setObjectName(QStringLiteral("maxTokens"));
  maxTokens_->setAccessibleName(tr("Max tokens"));
  maxTokens_->setToolTip(tr("The longest answer, in tokens"));
  maxTokens_->setRange(0, 131072);
  maxTokens_->setSingleStep(64);
  maxTokens_->setSpecialValueText(tr("Default"));
  more_ = new QToolButton(this);
  more_->setObjectName(QStringLiteral("generationMore"));
  more_->setText(tr("⋯"));
  more_->setAccessibleName(tr("More conversation settings"));
  more_->setPopupMode(QToolButton::InstantPopup);
  auto* menu = new QMenu(more_);
  menu->setAccessibleName(tr("Conversation settings menu"));
  menu->addAction(tr("Write a system prompt…"), this, &GenerationBar::editCustomPrompt);
  menu->addAction(tr("Save the prompt as a preset…"), this, &GenerationBar::savePromptAsPreset);
  menu->addAction(tr("Use these settings for new chats"), this,
                  [this] { emit defaultsChosen(settings_); });
  more_->setMenu(menu);

  auto* row = new QHBoxLayout(this);
  row->setContentsMargins(0, 0, 0, 0);
  row->addWidget(label(tr("&Prompt:"), preset_, this));
  row->addWidget(preset_, 1);
  row->addWidget(label(tr("M&odel:"), model_, this));
  row->addWidget(model_, 1);
  row->addWidget(label(tr("&Temp.:"), temperature_, this));
  row->addWidget(temperature_);
  row->addWidget(label(tr("Top-&p:"), topP_, this));
  row->addWidget(topP_);
  row->addWidget(label(tr("Ma&x:"), maxTokens_, this));
  row->addWidget(maxTokens_);
  row->addWidget(more_);

  fillPresets();
  fillModels();
  show(settings_);
  connect(preset_, &QComboBox::activated, this,
          [this] { choosePreset(preset_->currentData().toString()); });
  connect(model_, &QComboBox::activated, this, [this] { edited(); });
  connect(temperature_, &QDoubleSpinBox::valueChanged, this, [this] { edited(); });
  connect(topP_, &QDoubleSpinBox::valueChanged, this, [this] { edited(); });
  connect(maxTokens_, &QSpinBox::valueChanged, this, [this] { edited(); });
}

void GenerationBar::setSettings(const ConversationSettings& s) {
  settings_ = s;
  show(s);
}

void GenerationBar::setPresets(const QList<PromptPreset>& userPresets) {
  presets_ = builtInPresets() + userPresets;
  fillPresets();
  show(settings_);
}

void GenerationBar::setModels(const QStringList& models, const QString& error) {
  models_ = models;
  model_->setToolTip(error.isEmpty() ? tr("The model this conversation asks for")
                                     : tr("The model this conversation asks for (%1)").arg(error));
  fillModels();
  show(settings_);
}

void GenerationBar::fillPresets() {
  const bool was = std::exchange(updating_, true);
  preset_->clear();
  preset_->addItem(tr("No system prompt"), kNone);
  if (presets_.isEmpty()) presets_ = builtInPresets();
  for (const auto& p : presets_) {
    preset_->addItem(p.name, p.id);
    preset_->setItemData(preset_->count() - 1, p.prompt, Qt::ToolTipRole);
  }
  preset_->addItem(tr("Custom"), kCustom);
  updating_ = was;
}

void GenerationBar::fillModels() {
  const bool was = std::exchange(updating_, true);
  model_->clear();
  model_->addItem(tr("Endpoint default"), QString());
  for (const auto& m : models_) model_->addItem(m, m);
  // A model the conversation asked for stays shown even when the endpoint no longer lists it.
  if (!settings_.model.isEmpty() && !models_.contains(settings_.model)) {
    model_->addItem(tr("%1 (not listed)").arg(settings_.model), settings_.model);
  }
  updating_ = was;
}

void GenerationBar::show(const ConversationSettings& s) {
  const bool was = std::exchange(updating_, true);
  if (model_->findData(s.model) < 0) fillModels();
  model_->setCurrentIndex(std::max(0, model_->findData(s.model)));
  preset_->setCurrentIndex(std::max(0, preset_->findData(s.presetId)));
  preset_->setToolTip(s.systemPrompt.isEmpty() ? tr("No system prompt is sent") : s.systemPrompt);
  temperature_->setValue(s.temperature < 0 ? temperature_->minimum() : s.temperature);
  topP_->setValue(s.topP < 0 ? topP_->minimum() : s.topP);
  maxTokens_->setValue(s.maxTokens);
  updating_ = was;
}

void GenerationBar::edited() {
  if (updating_) return;
  settings_.model = model_->currentData().toString();
  settings_.temperature = temperature_->value() < 0 ? -1 : temperature_->value();
  settings_.topP = topP_->value() < 0 ? -1 : topP_->value();
  settings_.maxTokens = maxTokens_->value();
  emit settingsEdited(settings_);
}

void GenerationBar::choosePreset(const QString& id) {
  if (id == kCustom) {
    if (settings_.presetId != kCustom) editCustomPrompt();
    return;
  }
  settings_.presetId = id;
  settings_.systemPrompt.clear();
  for (const auto& p : presets_) {
    if (p.id == id) settings_.systemPrompt = p.prompt;
  }
  if (settings_.systemPrompt.isEmpty()) settings_.presetId = kNone;
  show(settings_);
  edited();
}

void GenerationBar::setCustomPrompt(const QString& text) {
  settings_.systemPrompt = text.trimmed();
  settings_.presetId = settings_.systemPrompt.isEmpty() ? kNone : kCustom;
  show(settings_);
  edited();
}

void GenerationBar::editCustomPrompt() {
  bool ok = false;
  const QString text = QInputDialog::getMultiLineText(
      this, tr("System prompt"), tr("Instructions sent before this conversation:"),
      settings_.systemPrompt, &ok);
  if (ok) {
    setCustomPrompt(text);
  } else {
    show(settings_);  // back to the preset shown before "Custom" was picked
  }
}

void GenerationBar::savePromptAsPreset() {
  if (settings_.systemPrompt.isEmpty()) editCustomPrompt();
  if (settings_.systemPrompt.isEmpty()) return;
  bool ok = false;
  const QString name = QInputDialog::getText(this, tr("Save preset"), tr("Name of the preset:"),
                                             QLineEdit::Normal, {}, &ok)
                           .simplified();
  if (!ok || name.isEmpty()) return;
  PromptPreset p{QStringLiteral("user:") + name, name, settings_.systemPrompt, false};
  presets_.removeIf([&p](const PromptPreset& q) { return q.id == p.id; });
  presets_.append(p);
  fillPresets();
  emit presetSaved(p);
  settings_.presetId = p.id;
  show(settings_);
  edited();
}

}  // namespace tidelane::ui
