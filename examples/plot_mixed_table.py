"""
Imputing and encoding a mixed table
===================================

vega_datasets' ``cars`` table has numeric columns with missing values and a
categorical ``Origin``. We hide 20% of the observed cells of held-out rows,
fill them with :class:`skae.AutoencoderImputer` and with scikit-learn's
:class:`~sklearn.impute.SimpleImputer`, and compare the errors; then we
learn 2-D codes of the table as it is.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.impute import SimpleImputer
from vega_datasets import data

from skae import AutoencoderImputer

cars = data.cars().drop(columns=["Name", "Year"])
print(cars.dtypes)
print("missing cells per column:", cars.isna().sum().to_dict())

# %%
# Hide 20% of the observed cells of held-out rows.
rng = np.random.RandomState(0)
order = rng.permutation(len(cars))
train, truth = cars.iloc[order[:280]], cars.iloc[order[280:]]
hidden = truth.notna().to_numpy() & (rng.rand(*truth.shape) < 0.2)
test = truth.mask(hidden)

# %%
# The imputer takes the frame as it is: the string column ``Origin`` is
# categorical from its dtype, and the output keeps columns, dtypes and index.
imputer = AutoencoderImputer(max_iter=100, random_state=0).fit(train)
filled = imputer.transform(test)
numeric = [c for c in cars.columns if c != "Origin"]
mean = test.copy()
mean[numeric] = SimpleImputer().fit(train[numeric]).transform(test[numeric])

errors = {}
for name, frame in [("AutoencoderImputer", filled), ("SimpleImputer(mean)", mean)]:
    d = [(frame[c] - truth[c])[hidden[:, j]] / train[c].std()
         for j, c in enumerate(cars.columns) if c in numeric]
    errors[name] = float(np.sqrt(np.mean(np.concatenate(d) ** 2)))
print(errors)

# %%
plt.bar(list(errors), list(errors.values()))
plt.ylabel("RMSE on hidden numeric cells (standard deviations)")
plt.show()

# %%
# Features of the same table: every skae estimator takes the frame as it is
# (missing cells and the string column included), so a 2-D code needs no
# preprocessing. Origin is left out so that the map is not told it.
from skae import AutoencoderTransformer

features = cars.drop(columns=["Origin"])
ae = AutoencoderTransformer(n_components=2, random_state=0).fit(features)
codes = ae.transform(features)
for origin in cars["Origin"].unique():
    rows = (cars["Origin"] == origin).to_numpy()
    plt.scatter(codes[rows, 0], codes[rows, 1], s=8, label=origin)
plt.legend()
plt.title("2-D codes of cars, missing cells and all")
plt.show()

# %%
# ``reconstruct`` gives a frame of the same columns and dtypes back, every
# missing cell filled.
print(ae.reconstruct(features).head())
