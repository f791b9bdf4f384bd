"""
Grid search over a pipeline
===========================

skae's estimators are scikit-learn transformers, so they sit in a
:class:`~sklearn.pipeline.Pipeline` and are tuned by
:class:`~sklearn.model_selection.GridSearchCV` like any other step. Here a
pipeline of a scaler, an autoencoder and a logistic regression is tuned on
scikit-learn's digits for classification accuracy, over the code width and
the hidden layers.

Small budgets keep this short (20 epochs per fit, 3 folds); more epochs and
a wider grid trade time for a little accuracy.
"""

import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipe = Pipeline([
    ("scale", MinMaxScaler()),
    ("ae", AutoencoderTransformer(max_iter=20, n_threads=1, random_state=0)),
    ("clf", LogisticRegression(max_iter=1000)),
])
grid = {"ae__n_components": [4, 8, 16], "ae__hidden_layer_sizes": [(64,), (128, 64)]}
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)

results = pd.DataFrame(search.cv_results_)[
    ["param_ae__n_components", "param_ae__hidden_layer_sizes", "mean_test_score", "rank_test_score"]]
print(results.sort_values("rank_test_score").to_string(index=False))
print("best:", search.best_params_)
print(f"test accuracy of the refitted pipeline: {search.score(X_test, y_test):.3f}")

# %%
# The mean cross-validated accuracy for each setting.
import matplotlib.pyplot as plt

table = results.pivot(index="param_ae__n_components", columns="param_ae__hidden_layer_sizes",
                      values="mean_test_score")
ax = table.plot(marker="o", figsize=(6, 4))
ax.set_xlabel("n_components")
ax.set_ylabel("mean CV accuracy")
plt.show()
