#include "ui/welcome_dialog.h"

#include <QDialogButtonBox>
#include <QFormLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace tidelane::ui {

WelcomeDialog::WelcomeDialog(const BundledModelDetails& model, QWidget* parent) : QDialog(parent) {
  setObjectName(QStringLiteral("welcomeDialog"));
  setWindowTitle(tr("Welcome to Tidelane"));
  setAccessibleName(tr("Welcome to Tidelane"));

  auto* intro = new QLabel(this);
  intro->setObjectName(QStringLiteral("welcomeText"));
  intro->setWordWrap(true);
  intro->setTextFormat(Qt::RichText);
  intro->setText(
      tr("<h2>Welcome to Tidelane</h2>"
         "<p>Out of the box, Tidelane runs a small bundled <b>guide model</b> offline, right "
         "here on this computer: nothing you type leaves it.</p>"
         "<p>The guide is tiny (%1 parameters). It answers questions about Tidelane itself, "
         "its routing and its monitor, and is <b>not a general assistant</b>: for everyday "
         "questions, get a larger model or connect to an endpoint you use.</p>")
          .arg(model.parameters.isEmpty() ? tr("3.6M") : model.parameters));
  intro->setAccessibleName(tr("About the bundled model"));

  auto* details = new QWidget(this);
  details->setObjectName(QStringLiteral("bundledModelDetails"));
  auto* form = new QFormLayout(details);
  const auto row = [&](const QString& label, const QString& value, const char* name) {
    auto* v = new QLabel(value.isEmpty() ? tr("unknown") : value, details);
    v->setObjectName(QString::fromLatin1(name));
    v->setTextInteractionFlags(Qt::TextSelectableByMouse);
    v->setAccessibleName(label);
    form->addRow(label + tr(":"), v);
  };
  if (model.problem.isEmpty()) {
    row(tr("Model"), model.name, "modelName");
    row(tr("Parameters"), model.parameters, "modelParameters");
    row(tr("Architecture"), model.architecture, "modelArchitecture");
    row(tr("Weights"), model.quantisation, "modelQuantisation");
    row(tr("Context"), model.contextLength, "modelContext");
    row(tr("Size on disk"), model.size, "modelSize");
    row(tr("File"), model.path, "modelPath");
  } else {
    row(tr("Bundled model"), model.problem, "modelProblem");
  }

  auto* buttons = new QDialogButtonBox(this);
  auto* larger = buttons->addButton(tr("Get a larger model…"), QDialogButtonBox::ActionRole);
  larger->setObjectName(QStringLiteral("getLargerModel"));
  larger->setAccessibleName(tr("Get a larger model"));
  auto* endpoint = buttons->addButton(tr("Connect to an endpoint…"), QDialogButtonBox::ActionRole);
  endpoint->setObjectName(QStringLiteral("connectEndpoint"));
  endpoint->setAccessibleName(tr("Connect to an endpoint"));
  auto* start = buttons->addButton(tr("Start chatting"), QDialogButtonBox::AcceptRole);
  start->setObjectName(QStringLiteral("startChatting"));
  start->setAccessibleName(tr("Start chatting"));
  start->setDefault(true);
  connect(larger, &QPushButton::clicked, this, [this] {
    accept();
    emit largerModelRequested();
  });
  connect(endpoint, &QPushButton::clicked, this, [this] {
    accept();
    emit endpointRequested();
  });
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(intro);
  layout->addWidget(details);
  layout->addWidget(buttons);
  setMinimumWidth(480);
}

}  // namespace tidelane::ui
